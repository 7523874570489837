"""The sync's input, read from contacts and push_state: contacts whose revision is newer
than the one the ESP last settled for the audience (or with no push state there), in
chunks by id, each with its policy facts and list memberships. Memory is O(chunk)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Text, and_, func, or_, select, type_coerce

from syncd.keys import Keyring
from syncd.schema import Contact, InternalList, ListMembership, PushState
from syncd.store import facts
from syncd.store.facts import Scope, StoredFacts

# Most contacts have no imported attributes: skip the JSON decoder for "{}". The times
# come as the driver gives them (syncd.store.facts.moment reads them): most are NULL, and
# the column type's processing would run for every one of them.
_RAW_ATTRIBUTES = type_coerce(Contact.attributes, Text)
# One row per candidate, in this column order (tuple unpacking: attribute access on rows
# costs more than the planning).
_COLUMNS = (Contact.id, Contact.revision, Contact.email_key, Contact.first_name,
            Contact.last_name, _RAW_ATTRIBUTES, Contact.is_customer,
            type_coerce(Contact.undeliverable_at, Text), PushState.settled_revision,
            PushState.fingerprint, PushState.esp_status, PushState.esp_email,
            PushState.parked_reason, PushState.attempt_fingerprint,
            type_coerce(PushState.retry_after, Text),
            type_coerce(PushState.esp_last_changed, Text),
            type_coerce(Contact.created_at, Text), PushState.esp_permissions)


@dataclass(frozen=True)
class Chunk:
    """Candidates in id order (`rows`, columns as `_COLUMNS`, times raw), their addresses' keyed
    hashes, policy facts and the names of their lists among the wanted ones."""

    rows: Sequence[tuple[Any, ...]]
    hmacs: Sequence[str]
    facts: StoredFacts
    lists: dict[int, tuple[str, ...]]


def _pending(audience_id: str, after_id: int, everyone: bool = False) -> Scope:
    """`everyone`: every contact, settled or not (a changed target configuration, or
    `syncd sync --full`: everyone is planned again, parked contacts retried)."""
    join = and_(PushState.contact_id == Contact.id, PushState.audience_id == audience_id)
    if everyone:
        return join, Contact.id > after_id
    where = and_(Contact.id > after_id,
                 or_(PushState.contact_id.is_(None), Contact.revision > PushState.settled_revision))
    return join, where


def count(engine: Engine, audience_id: str, *, everyone: bool = False) -> int:
    """How many contacts the next sync run looks at."""
    join, where = _pending(audience_id, 0, everyone)
    query = select(func.count()).select_from(Contact).outerjoin(PushState, join).where(where)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _filter(audience_id: str, after: int, upto: int | None, live: Sequence[str] | None,
            pulled_at: datetime | None, *, everyone: bool = False) -> Scope:
    join, where = _pending(audience_id, after, everyone)
    if upto is not None:
        where = and_(where, Contact.id <= upto)
    if live is not None:
        known_live: ColumnElement[bool] = PushState.esp_status.in_(live)
        if pulled_at is not None:
            # Contacts new since the pull may be members syncd never saw (sync/plan.py).
            known_live = or_(known_live, and_(PushState.esp_status.is_(None),
                                              Contact.created_at > pulled_at))
        where = and_(where, known_live)
    return join, where


def chunks(engine: Engine, audience_id: str, keyring: Keyring, *, chunk_size: int,
           purpose_lists: tuple[str, ...], live: Sequence[str] | None = None,
           pulled_at: datetime | None = None, everyone: bool = False,
           purchases: bool = True) -> Iterator[Chunk]:
    """Chunks of candidates, in id order. `live`: only those syncd knows have one of
    these statuses at the ESP (the safety limit's pre-count of unsubscribes); `everyone`:
    settled contacts too; `purchases`: read them (the soft opt-in basis only needs them).

    Per chunk: the contacts (keyset by id), then their consent events and list
    memberships each in ONE query over the same filter bounded by the chunk's last id
    (no list of ids to bind); suppressions and the inbox by keyed hash."""
    after = 0
    while True:
        join, where = _filter(audience_id, after, None, live, pulled_at, everyone=everyone)
        query = (select(*_COLUMNS).select_from(Contact).outerjoin(PushState, join)
                 .where(where).order_by(Contact.id).limit(chunk_size))
        with engine.connect() as conn:
            rows = conn.execute(query).all()
            if not rows:
                return
            last = rows[-1][0]
            scope = _filter(audience_id, after, last, live, pulled_at, everyone=everyone)
            hmacs = keyring.address_hmacs([row[2] for row in rows])
            found = facts.of_contacts(conn, [row[0] for row in rows], hmacs, keyring,
                                      scope=scope, with_purchases=purchases)
            lists = _lists(conn, scope, purpose_lists)
        yield Chunk(rows, hmacs, found, lists)
        after = last


def _lists(conn: Connection, scope: Scope, names: tuple[str, ...]
           ) -> dict[int, tuple[str, ...]]:
    if not names:
        return {}
    join, where = scope
    found: dict[int, list[str]] = defaultdict(list)
    query = (select(ListMembership.contact_id, InternalList.name)
             .select_from(Contact)
             .join(ListMembership, ListMembership.contact_id == Contact.id)
             .join(InternalList, InternalList.id == ListMembership.list_id)
             .outerjoin(PushState, join).where(where, InternalList.name.in_(names)))
    for cid, name in conn.execute(query).all():
        found[cid].append(name)
    return {cid: tuple(names) for cid, names in found.items()}
