"""The sync's input: contacts whose revision is newer than the one the ESP last settled
(or with no push state for the audience), streamed in chunks by id with everything the
planner needs. Memory is O(chunk), never O(contacts)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection, Engine, Text, and_, func, or_, select, type_coerce

from syncd.clock import as_utc
from syncd.consent.policy import Action, ConsentFact, SuppressionFact
from syncd.crm import address_history
from syncd.keys import Keyring
from syncd.schema import (
    ConsentEvent,
    Contact,
    InternalList,
    ListMembership,
    PushState,
    Suppression,
    WebhookEvent,
)
from syncd.sync.plan import LIVE, ContactFacts, KnownState

# Inbox events that block a push until applied: the person may have just left.
BLOCKING_KINDS = ("unsubscribe", "cleaned")
UNAPPLIED = ("received", "failed", "parked")
_ACTIONS = {action.value: action for action in Action}
# Most contacts have no imported attributes: skip the JSON decoder for "{}".
_RAW_ATTRIBUTES = type_coerce(Contact.attributes, Text)


def _moment(raw: object) -> datetime:
    """Event times, read without SQLAlchemy's per-value processing (two per contact):
    SQLite gives ISO text (naive = UTC), PostgreSQL's driver an aware datetime."""
    moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return as_utc(moment)


def _attributes(raw: object) -> dict[str, str]:
    if raw is None or raw in ("{}", "null"):
        return {}
    if isinstance(raw, dict):  # a driver that decodes JSON itself
        return raw
    decoded = json.loads(str(raw))
    return decoded if isinstance(decoded, dict) else {}


@dataclass(frozen=True)
class Candidate:
    facts: ContactFacts
    known: KnownState | None


def _pending_filter(audience_id: str,
                    after_id: int) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    join = and_(PushState.contact_id == Contact.id, PushState.audience_id == audience_id)
    where = and_(Contact.id > after_id,
                 or_(PushState.contact_id.is_(None), Contact.revision > PushState.settled_revision))
    return join, where


def count_candidates(engine: Engine, audience_id: str) -> int:
    join, where = _pending_filter(audience_id, 0)
    query = select(func.count()).select_from(Contact).outerjoin(PushState, join).where(where)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def count_live_members(engine: Engine, audience_id: str) -> int:
    """Members syncd knows are subscribed or pending at the ESP."""
    query = select(func.count()).select_from(PushState).where(
        PushState.audience_id == audience_id, PushState.esp_status.in_(LIVE))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _chunk_filter(audience_id: str, after: int, upto: int | None, live_only: bool,
                  pulled_at: datetime | None = None
                  ) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    join, where = _pending_filter(audience_id, after)
    if upto is not None:
        where = and_(where, Contact.id <= upto)
    if live_only:
        live: ColumnElement[bool] = PushState.esp_status.in_(LIVE)
        if pulled_at is not None:
            # Contacts new since the pull may be members syncd never saw (plan.py).
            live = or_(live, and_(PushState.esp_status.is_(None),
                                  Contact.created_at > pulled_at))
        where = and_(where, live)
    return join, where


def iter_candidates(engine: Engine, audience_id: str, keyring: Keyring, *, chunk_size: int,
                    purpose_lists: tuple[str, ...], live_only: bool = False,
                    pulled_at: datetime | None = None) -> Iterator[list[Candidate]]:
    """Chunks of contacts to look at, in id order. `live_only`: only those syncd knows are
    live at the ESP (the safety limit's pre-count of unsubscribes).

    Per chunk: the contacts (keyset by id), then their consent events and list
    memberships each in ONE set-based query over the same filter bounded by the chunk's
    last id (no list of ids to bind), grouped by contact id; suppressions and unapplied
    inbox events by keyed hash (those tables know no contact id)."""
    mac = keyring.address_hmacs
    after = 0
    while True:
        join, where = _chunk_filter(audience_id, after, None, live_only, pulled_at)
        query = (select(Contact.id, Contact.revision, Contact.email_key, Contact.first_name,
                        Contact.last_name, _RAW_ATTRIBUTES, Contact.is_customer,
                        Contact.undeliverable_at, PushState.settled_revision,
                        PushState.fingerprint, PushState.esp_status, PushState.esp_email,
                        PushState.parked_reason, PushState.attempt_fingerprint,
                        PushState.retry_after, PushState.esp_last_changed,
                        Contact.created_at)
                 .select_from(Contact).outerjoin(PushState, join).where(where)
                 .order_by(Contact.id).limit(chunk_size))
        with engine.connect() as conn:
            rows = conn.execute(query).all()
            if not rows:
                return
            last = rows[-1][0]
            hmacs = mac([row[2] for row in rows])
            events = _events(conn, _chunk_filter(audience_id, after, last, live_only,
                                                 pulled_at))
            lists = _lists(conn, _chunk_filter(audience_id, after, last, live_only,
                                               pulled_at),
                           purpose_lists)
            # One person, every address (I12): the suppressions of a contact's earlier
            # addresses, and of the other addresses of whoever once had this one.
            related = address_history.same_person(conn, hmacs, keyring.address_hmac)
            earlier = address_history.earlier_of_contacts(conn, [row[0] for row in rows])
            for row, hmac in zip(rows, hmacs, strict=True):
                if row[0] in earlier:
                    related.setdefault(hmac, set()).update(earlier[row[0]])
            blocks = _suppressions(conn, hmacs, related)
            inbox = _inbox_blocked(conn, hmacs)
        chunk = []
        no_events: tuple[ConsentFact, ...] = ()
        no_lists: tuple[str, ...] = ()
        # Tuple unpacking: attribute access on rows costs more than the planning.
        for (cid, revision, email, first, last_name, attributes, customer, bounced, settled,
             print_, status, esp_email, parked, attempt, retry_after, esp_changed,
             created), hmac in zip(
                 rows, hmacs, strict=True):
            facts = ContactFacts(
                contact_id=cid, revision=revision, email=email, first_name=first,
                last_name=last_name, attributes=_attributes(attributes),
                is_customer=bool(customer),
                undeliverable_at=bounced, lists=lists.get(cid, no_lists),
                events=events.get(cid, no_events),
                suppressions=tuple(blocks[hmac]) if hmac in blocks else (),
                inbox_block=hmac in inbox,
                unknown_to_pull=(status is None and pulled_at is not None
                                 and created is not None and as_utc(created) > pulled_at))
            known = None if settled is None else KnownState(
                settled_revision=settled, fingerprint=print_, esp_status=status,
                esp_email=esp_email, parked_reason=parked, attempt_fingerprint=attempt,
                retry_after=retry_after,
                esp_last_changed=None if esp_changed is None else _moment(esp_changed))
            chunk.append(Candidate(facts, known))
        yield chunk
        after = last


def _events(conn: Connection, chunk: tuple[ColumnElement[bool], ColumnElement[bool]]
            ) -> dict[int, tuple[ConsentFact, ...]]:
    join, where = chunk
    found: dict[int, list[ConsentFact]] = defaultdict(list)
    query = (select(ConsentEvent.contact_id, ConsentEvent.purpose, ConsentEvent.action,
                    type_coerce(ConsentEvent.occurred_at, Text), ConsentEvent.source,
                    ConsentEvent.ip, ConsentEvent.text_version)
             .select_from(Contact).join(ConsentEvent, ConsentEvent.contact_id == Contact.id)
             .outerjoin(PushState, join).where(where))
    actions = _ACTIONS
    for cid, purpose, action, occurred_at, channel, ip, text_version in conn.execute(
            query).all():
        found[cid].append(ConsentFact(purpose, actions[action], _moment(occurred_at),
                                      channel, ip, text_version))
    return {cid: tuple(facts) for cid, facts in found.items()}


def _lists(conn: Connection, chunk: tuple[ColumnElement[bool], ColumnElement[bool]],
           names: tuple[str, ...]) -> dict[int, tuple[str, ...]]:
    if not names:
        return {}
    join, where = chunk
    found: dict[int, list[str]] = defaultdict(list)
    query = (select(ListMembership.contact_id, InternalList.name)
             .select_from(Contact)
             .join(ListMembership, ListMembership.contact_id == Contact.id)
             .join(InternalList, InternalList.id == ListMembership.list_id)
             .outerjoin(PushState, join).where(where, InternalList.name.in_(names)))
    for cid, name in conn.execute(query).all():
        found[cid].append(name)
    return {cid: tuple(names) for cid, names in found.items()}


def _suppressions(conn: Connection, hmacs: list[str], related: dict[str, set[str]]
                  ) -> dict[str, list[SuppressionFact]]:
    """Suppressions by keyed hash, those of the same person's other addresses included."""
    wanted = set(hmacs).union(*related.values()) if related else set(hmacs)
    direct: dict[str, list[SuppressionFact]] = defaultdict(list)
    query = (select(Suppression.address_hmac, Suppression.purpose, Suppression.reason,
                    Suppression.created_at).where(Suppression.address_hmac.in_(sorted(wanted))))
    for row in conn.execute(query):
        direct[row.address_hmac].append(SuppressionFact(
            purpose=row.purpose, reason=row.reason, created_at=row.created_at))
    if not related:
        return direct
    found: dict[str, list[SuppressionFact]] = defaultdict(list)
    for hmac in hmacs:
        for mac in {hmac} | related.get(hmac, set()):
            found[hmac].extend(direct.get(mac, ()))
    return found


def _inbox_blocked(conn: Connection, hmacs: list[str]) -> set[str]:
    query = (select(WebhookEvent.address_hmac).where(
        WebhookEvent.address_hmac.in_(hmacs), WebhookEvent.kind.in_(BLOCKING_KINDS),
        WebhookEvent.status.in_(UNAPPLIED)))
    return {row.address_hmac for row in conn.execute(query)}
