"""A contact's facts for the consent policy as stored, read for many contacts at once:
consent events, the suppressions of every address of the same person (I12), whether
an unapplied unsubscribe or clean waits in the inbox, and purchases (rule 11). The one
read of them; syncd.consent.facts turns them into the policy's facts and asks it."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, Connection, Text, func, select, type_coerce
from sqlalchemy.orm import Session

from syncd.clock import as_utc
from syncd.keys import Keyring
from syncd.schema import AddressHistory, ConsentAction, ConsentEvent, Contact, PushState
from syncd.store import address_history, inbox, purchases, suppressions
from syncd.store.ledger import StoredEvent  # a consent event as the policy reads it

IN_CHUNK = 900
_T = TypeVar("_T", int, str)


_NAIVE_TEXT = len("2026-01-01 00:00:00.000000")  # SQLite's UtcDateTime text (naive = UTC)
_from_iso = datetime.fromisoformat


def moment(raw: object) -> datetime:
    """A time read without SQLAlchemy's per-value processing (the sync reads several per
    contact): SQLite gives ISO text (naive = UTC), PostgreSQL's driver an aware datetime."""
    if type(raw) is str and len(raw) == _NAIVE_TEXT:
        # The zone parsed with the text: a seventh of the cost of parse, then replace.
        return _from_iso(raw + "+00:00")
    value = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return as_utc(value)


def attributes(raw: object) -> dict[str, str]:
    """A contact's attributes read as text (most are "{}": no JSON decoding for those)."""
    if raw is None or raw in ("{}", "null"):
        return {}
    if isinstance(raw, dict):  # a driver that decodes JSON itself
        return raw
    decoded = json.loads(str(raw))
    return decoded if isinstance(decoded, dict) else {}


@dataclass(frozen=True)
class Subject:
    """A contact whose facts are wanted, as the caller already holds it."""

    contact_id: int
    email_key: str
    is_customer: bool = False
    undeliverable_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """A suppression entry: a purpose (or "*"), why, since when."""

    purpose: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class StoredFacts:
    """The facts of a set of contacts, by contact id (absent: none)."""

    events: Mapping[int, tuple[StoredEvent, ...]]
    suppressions: Mapping[int, tuple[StoredBlock, ...]]
    inbox_blocked: frozenset[int]
    # The soft opt-in basis (rule 11): the contacts' purchases.
    purchases: Mapping[int, tuple[purchases.StoredPurchase, ...]] = field(
        default_factory=dict)


# The sync's chunk filter (syncd.store.candidates): the events of the contacts it
# selects are read by joining it, with no list of ids to bind.
Scope = tuple[ColumnElement[bool], ColumnElement[bool]]


def read(db: Session | Connection, subjects: Sequence[Subject], keyring: Keyring, *,
         hmacs: Sequence[str] | None = None, scope: Scope | None = None) -> StoredFacts:
    """The stored facts of these contacts: a few set-based queries for any number.
    `hmacs`: their addresses' keyed hashes when the caller has them already (in order)."""
    conn = db.connection() if isinstance(db, Session) else db
    macs = list(hmacs) if hmacs is not None else keyring.address_hmacs(
        [s.email_key for s in subjects])
    return of_contacts(conn, [s.contact_id for s in subjects], macs, keyring, scope=scope)


def of_contacts(conn: Connection, ids: Sequence[int], macs: Sequence[str], keyring: Keyring,
                *, scope: Scope | None = None, with_purchases: bool = True) -> StoredFacts:
    """`read` for contact ids and their keyed hashes (in the same order), as the sync's
    chunks hold them. The work per contact is kept to what it has: most contacts have
    no suppression, no other address and nothing waiting in the inbox. Purchases only
    when asked (the soft opt-in basis reads them; a consent target never does)."""
    related = _same_person(conn, ids, macs, keyring, scope)
    wanted = set(macs)
    for group in related.values():
        wanted |= group
    blocks = _suppressions(conn, wanted)
    suppressions: dict[int, tuple[StoredBlock, ...]] = {}
    if blocks:
        for cid, mac in zip(ids, macs, strict=True):
            found = [fact for m in ({mac} | related[mac] if mac in related else (mac,))
                     for fact in blocks.get(m, ())]
            if found:
                suppressions[cid] = tuple(found)
    inbox = _inbox_blocked(conn, macs)
    return StoredFacts(events=_events(conn, ids, scope), suppressions=suppressions,
                       inbox_blocked=frozenset(cid for cid, mac in zip(ids, macs, strict=True)
                                               if mac in inbox) if inbox else frozenset(),
                       purchases=(purchases.of_contacts(conn, ids, scope)
                                  if with_purchases else {}))


def _events(conn: Connection, ids: Sequence[int], scope: Scope | None
            ) -> dict[int, tuple[StoredEvent, ...]]:
    columns = (ConsentEvent.contact_id, ConsentEvent.purpose, ConsentEvent.action,
               type_coerce(ConsentEvent.occurred_at, Text), ConsentEvent.source,
               ConsentEvent.ip, ConsentEvent.text_version)
    if scope is not None:
        join, where = scope
        queries = [select(*columns).select_from(Contact)
                   .join(ConsentEvent, ConsentEvent.contact_id == Contact.id)
                   .outerjoin(PushState, join).where(where)]
    else:
        queries = [select(*columns).where(ConsentEvent.contact_id.in_(
            ids[start : start + IN_CHUNK])) for start in range(0, len(ids), IN_CHUNK)]
    found: dict[int, list[StoredEvent]] = defaultdict(list)
    for query in queries:
        for cid, purpose, action, occurred_at, channel, ip, text_version in conn.execute(
                query).all():
            found[cid].append(StoredEvent(cid, purpose, action, moment(occurred_at), channel,
                                          ip, text_version))
    return {cid: tuple(facts) for cid, facts in found.items()}


def _in_chunks(values: Iterable[_T]) -> Iterable[list[_T]]:
    ordered = sorted(set(values))
    return (ordered[start : start + IN_CHUNK] for start in range(0, len(ordered), IN_CHUNK))


def _same_person(conn: Connection, ids: Sequence[int], macs: Sequence[str],
                 keyring: Keyring, scope: Scope | None = None) -> dict[str, set[str]]:
    """For each contact's keyed hash, the OTHER hashes of the same person: its own
    earlier addresses, and the earlier and current addresses of every contact that once
    had this one. Only the contacts with any are looked at (the reads answer only those)."""
    earlier: dict[int, set[str]] = {}
    others: dict[str, set[str]] = {}
    if scope is not None:
        earlier = _earlier_in_scope(conn, scope)
    else:
        for id_chunk in _in_chunks(ids):
            earlier.update(address_history.earlier_of_contacts(conn, id_chunk))
    for mac_chunk in _in_chunks(macs):
        others.update(address_history.same_person(conn, mac_chunk, keyring.address_hmac))
    found: dict[str, set[str]] = {}
    if earlier:
        mac_of = dict(zip(ids, macs, strict=True))
        for cid, group in earlier.items():
            found.setdefault(mac_of[cid], set()).update(group)
    for mac, group in others.items():
        found.setdefault(mac, set()).update(group)
    for mac, group in list(found.items()):
        group.discard(mac)
        if not group:
            del found[mac]
    return found


def _earlier_in_scope(conn: Connection, scope: Scope) -> dict[int, set[str]]:
    """The earlier addresses of the contacts the sync's chunk filter selects, joined like
    their events (no list of ids to bind and render)."""
    join, where = scope
    found: dict[int, set[str]] = defaultdict(set)
    for cid, mac in conn.execute(
            select(AddressHistory.contact_id, AddressHistory.address_hmac).select_from(Contact)
            .join(AddressHistory, AddressHistory.contact_id == Contact.id)
            .outerjoin(PushState, join).where(where)).all():
        found[cid].add(mac)
    return found


def _suppressions(conn: Connection, macs: set[str]) -> dict[str, list[StoredBlock]]:
    # A session on the caller's connection (and its transaction) for the store's read.
    with Session(bind=conn) as session:
        return {mac: [StoredBlock(e.purpose, e.reason, e.created_at) for e in entries]
                for chunk in _in_chunks(macs)
                for mac, entries in suppressions.by_hmac(session, chunk).items()}


def _inbox_blocked(conn: Connection, macs: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _in_chunks(macs):
        found |= inbox.blocked_address_hmacs(conn, chunk)
    return found


def earliest_sign_ups(session: Session, wanted: set[tuple[str, str]]
                      ) -> dict[tuple[str, str], datetime]:
    """The earliest `given` per (address key, purpose) already in the ledger."""
    keys = sorted({key for key, _ in wanted})
    found: dict[tuple[str, str], datetime] = {}
    for start in range(0, len(keys), IN_CHUNK):
        query = (select(Contact.email_key, ConsentEvent.purpose,
                        func.min(ConsentEvent.occurred_at))
                 .join(ConsentEvent, ConsentEvent.contact_id == Contact.id)
                 .where(Contact.email_key.in_(keys[start : start + IN_CHUNK]),
                        ConsentEvent.action == "given")
                 .group_by(Contact.email_key, ConsentEvent.purpose))
        for key, purpose, first in session.connection().execute(query):
            if (key, purpose) in wanted:
                found[(key, purpose)] = as_utc(first)
    return found


def given_at_or_before(session: Session, contact_id: int, purpose: str, at: datetime) -> bool:
    """Whether the ledger holds a `given` of the purpose for the contact at or before `at`
    (a confirmation counts only with one: rule 10)."""
    return session.scalar(select(ConsentEvent.id).where(
        ConsentEvent.contact_id == contact_id, ConsentEvent.purpose == purpose,
        ConsentEvent.action == str(ConsentAction.GIVEN), ConsentEvent.occurred_at <= at)
        .limit(1)) is not None
