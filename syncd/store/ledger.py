"""The consent ledger's tables (consent_events, ledger_chain_head, ledger_tombstones): the
hash chain's links, the one append, the removal that leaves tombstones, and the reads.

Every consent event carries the SHA-256 of its content and of the event before it, so an
event changed, removed or slipped in later breaks the chain (`syncd ledger verify`). The
head row holds the newest link. Appends are serialised: two writers computing a link
from the same head would fork the chain. SQLite already serialises writers (BEGIN
IMMEDIATE, syncd.db); on PostgreSQL the head row is locked with SELECT ... FOR UPDATE
until commit. The contact rows are locked first, in id order, so a writer that holds the
head never waits for a contact another writer holds while that writer waits for the
head (no deadlock with an import). A transaction that holds the head for a batch of
appends locks and reads it once (syncd.store.chain_hold)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Integer, String, Table, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from syncd.clock import as_utc, utcnow
from syncd.schema import (
    ConsentAction,
    ConsentEvent,
    Contact,
    LedgerChainHead,
    LedgerTombstone,
    UtcDateTime,
)
from syncd.store import chain_hold
from syncd.store.dialect import (
    any_of,
    copy_rows,
    insert_ignoring_duplicates,
    insert_rows,
    pieces,
)
from syncd.store.ledger_hash import GENESIS, HASHED_FIELDS, event_hash

HEAD_ID = 1
CHUNK = 900  # bound parameters per statement
# The columns a bulk append writes (the id is the database's).
_COPIED = (*HASHED_FIELDS, "chain_seq", "chain_prev", "chain_hash")
_OUTSIDE_THE_LOCK = ("consent ledger: an event was written outside the chain lock; "
                     "nothing of this batch is kept")
_EVENTS = cast(Table, ConsentEvent.__table__)
_HEADS = cast(Table, LedgerChainHead.__table__)


def _canonical_time(value: Any) -> Any:
    return as_utc(value) if isinstance(value, datetime) else value


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    updated_at: datetime | None


class StoredEvent(NamedTuple):
    """What the policy reads of a stored consent event. A named tuple, not a frozen
    dataclass: the sync reads one per event of every contact it plans, and a frozen
    dataclass pays a setattr per field to build."""

    contact_id: int
    purpose: str
    action: str
    occurred_at: datetime
    source: str
    ip: str | None
    text_version: str | None


@dataclass(frozen=True)
class RecentConsent:
    """A contact found by address, with its withdrawals and confirmations since a moment:
    (purpose, action, occurred_at), what "same withdrawal already recorded?" and
    "confirmed after this event?" are decided on."""

    id: int
    email_key: str
    recent: tuple[tuple[str, str, datetime], ...]


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# Built once: statement construction cost more than the round trips.
_LOCK_CONTACT = (select(Contact.id).where(Contact.id == bindparam("contact_id"))
                 .with_for_update())
_HEAD = select(LedgerChainHead.seq, LedgerChainHead.hash, LedgerChainHead.updated_at).where(
    LedgerChainHead.id == HEAD_ID)
_HEAD_FOR_UPDATE = _HEAD.with_for_update()
_MOVE_HEAD = (update(LedgerChainHead).where(LedgerChainHead.id == HEAD_ID)
              .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"),
                      updated_at=bindparam("now")))
_WITHDRAWN, _CONFIRMED = ConsentAction.WITHDRAWN, ConsentAction.CONFIRMED
# The contact and its recent withdrawals/confirmations in one round trip.
_CONTACT_RECENT = (
    select(Contact.id, Contact.email_key, ConsentEvent.purpose, ConsentEvent.action,
           ConsentEvent.occurred_at)
    .select_from(Contact)
    .outerjoin(ConsentEvent, (ConsentEvent.contact_id == Contact.id)
               & ConsentEvent.action.in_([_WITHDRAWN, _CONFIRMED])
               & (ConsentEvent.occurred_at >= bindparam("since")))
    .where(Contact.email_key == bindparam("email_key")))


def lock_contacts(session: Session, contact_ids: Iterable[int]) -> None:
    """On PostgreSQL, lock these contact rows (in id order) for this transaction: a writer
    takes its contacts before the chain head, never after (SQLite serialises writers)."""
    if not _postgres(session):
        return
    ids = sorted(set(contact_ids))
    conn = session.connection()
    if len(ids) == 1:
        conn.execute(_LOCK_CONTACT, {"contact_id": ids[0]})
        return
    # One array, not an IN list of placeholders per id (a bulk import's chunk).
    conn.execute(select(Contact.id).where(any_of(session, Contact.id, ids, Integer))
                 .order_by(Contact.id).with_for_update())


def _lock(session: Session, contact_ids: Iterable[int], *, contacts_locked: bool) -> Head:
    """Take the chain (and, on PostgreSQL, the contacts) for this transaction; the head."""
    postgres = _postgres(session)
    if postgres and not contacts_locked:
        lock_contacts(session, contact_ids)
    held = chain_hold.held(session)
    if held is not None:  # locked already in this transaction
        return held
    conn = session.connection()
    query = _HEAD_FOR_UPDATE if postgres else _HEAD
    found = conn.execute(query).first()
    if found is None:  # a database emptied by hand (TRUNCATE): start the head row again
        insert_ignoring_duplicates(session, _HEADS, [
            {"id": HEAD_ID, "seq": 0, "hash": GENESIS, "updated_at": utcnow()}])
        found = conn.execute(query).one()
    head = Head(int(found[0]), str(found[1]), found[2])
    chain_hold.moved(session, head)
    return head


def lock_head(session: Session) -> Head:
    """The head, locked (contacts locked first): for syncd.store.withdrawal's own write."""
    return _lock(session, (), contacts_locked=True)


def link(rows: Sequence[dict[str, Any]], head: Head) -> Head:
    """Give each row its place and links after `head`; returns the new head."""
    seq, prev = head.seq, head.hash
    for row in rows:
        seq += 1
        row["chain_seq"] = seq
        row["chain_prev"] = prev
        prev = row["chain_hash"] = event_hash(prev, row)
    return Head(seq, prev, utcnow())


def append(session: Session, rows: Sequence[dict[str, Any]], *,
           contacts_locked: bool = False) -> set[str]:
    """Insert consent_events rows, each linked after the head, skipping dedupe keys already
    stored (or repeated in `rows`); the head moves to the last. Returns the dedupe keys
    inserted. `contacts_locked`: the caller took `lock_contacts` for these contacts
    already. The head stays locked until commit, so callers append as late in their
    transaction as they can."""
    if not rows:
        return set()
    head = _lock(session, (int(r["contact_id"]) for r in rows),
                 contacts_locked=contacts_locked)
    fresh = list(rows)
    if len(rows) > 1:
        # A duplicate in the middle would break the links after it: drop the known ones
        # first (read under the lock: no one adds meanwhile). A single row needs no read:
        # the insert itself skips it, and nothing follows it.
        keys = [str(r["dedupe_key"]) for r in rows]
        known: set[str] = set()
        for part in pieces(session, keys, CHUNK):
            known.update(session.connection().scalars(select(ConsentEvent.dedupe_key).where(
                any_of(session, ConsentEvent.dedupe_key, part, String))))
        fresh = []
        for row in rows:
            if row["dedupe_key"] not in known:
                known.add(row["dedupe_key"])
                fresh.append(row)
        if not fresh:
            return set()
    new_head = link(fresh, head)
    if len(rows) > 1:
        # None of `fresh` is stored (read under the lock): one COPY on PostgreSQL, one
        # plain executemany on SQLite, in chain order.
        # On SQLite insert_rows's column types make the times UTC text; COPY takes them
        # as they are.
        postgres = _postgres(session)
        write = copy_rows if postgres else insert_rows
        try:
            write(session, _EVENTS, _COPIED, (
                [_canonical_time(row.get(name)) for name in _COPIED] if postgres
                else [row.get(name) for name in _COPIED] for row in fresh))
        except IntegrityError:
            raise RuntimeError(_OUTSIDE_THE_LOCK) from None
        inserted = {str(row["dedupe_key"]) for row in fresh}
    else:
        inserted = set(insert_ignoring_duplicates(session, _EVENTS, fresh,
                                                  _EVENTS.c.dedupe_key))
    if len(fresh) == 1 and not inserted:
        return set()  # the same event is there already
    if len(inserted) != len(fresh):  # someone wrote events without the chain lock
        raise RuntimeError(_OUTSIDE_THE_LOCK)
    session.connection().execute(_MOVE_HEAD, {"new_seq": new_head.seq,
                                              "new_hash": new_head.hash,
                                              "now": new_head.updated_at})
    chain_hold.moved(session, new_head)
    return inserted


def remove_events(session: Session, contact_ids: Sequence[int], *, reason: str) -> int:
    """Delete these contacts' events, leaving for each a tombstone with its place and
    hashes (no content): the chain still verifies and the gap is accounted for. The
    database refuses to delete an event without its tombstone (trigger of migration
    0006). Returns how many events were removed."""
    removed = 0
    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        source: Any = (select(ConsentEvent.chain_seq, ConsentEvent.id, ConsentEvent.chain_hash,
                              ConsentEvent.chain_prev, bindparam("now", type_=UtcDateTime()),
                              bindparam("reason", type_=String()))
                       .where(ConsentEvent.contact_id.in_(chunk)))
        tombstones: Any = LedgerTombstone.__table__
        session.execute(insert(tombstones).from_select(
            ["seq", "event_id", "event_hash", "prev_hash", "removed_at", "reason"], source),
            {"now": utcnow(), "reason": reason})
        deleted = session.execute(delete(ConsentEvent)
                                  .where(ConsentEvent.contact_id.in_(chunk))
                                  .execution_options(synchronize_session=False))
        removed += int(getattr(deleted, "rowcount", 0) or 0)
    return removed


def head(session: Session) -> Head:
    """The newest link, without taking the lock (for export and the status page)."""
    found = session.connection().execute(_HEAD).first()
    if found is None:
        return Head(0, GENESIS, None)
    return Head(int(found[0]), str(found[1]), found[2])


def events_by_contact(session: Session, contact_ids: Iterable[int]
                      ) -> dict[int, list[StoredEvent]]:
    """The events of these contacts, for the policy."""
    ids = list(contact_ids)
    found: dict[int, list[StoredEvent]] = defaultdict(list)
    for start in range(0, len(ids), CHUNK):  # bound the parameters per statement
        query = (select(ConsentEvent.contact_id, ConsentEvent.purpose, ConsentEvent.action,
                        ConsentEvent.occurred_at, ConsentEvent.source, ConsentEvent.ip,
                        ConsentEvent.text_version)
                 .where(ConsentEvent.contact_id.in_(ids[start:start + CHUNK]))
                 .order_by(ConsentEvent.id))
        for row in session.execute(query):
            found[row[0]].append(StoredEvent(*row))
    return found


def history(session: Session, contact_id: int) -> list[ConsentEvent]:
    """A contact's events in the order they happened (for people: inspect, export)."""
    return list(session.scalars(
        select(ConsentEvent).where(ConsentEvent.contact_id == contact_id)
        .order_by(ConsentEvent.occurred_at, ConsentEvent.id)))


def recent_by_address(session: Session, email_key: str, since: datetime
                      ) -> RecentConsent | None:
    """The contact with this address and its withdrawals and confirmations since `since`."""
    rows = session.connection().execute(_CONTACT_RECENT, {"email_key": email_key,
                                                          "since": since}).all()
    if not rows:
        return None
    recent = tuple((purpose, action, as_utc(at)) for _, _, purpose, action, at in rows
                   if purpose is not None)
    return RecentConsent(rows[0][0], rows[0][1], recent)
