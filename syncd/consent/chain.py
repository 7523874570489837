"""The ledger's hash chain: every consent event carries the SHA-256 of its content and of
the event before it, so an event changed, removed or slipped in later breaks the chain
(`syncd ledger verify`) — the append-only trigger alone let a DELETE or a direct edit pass.

This module is the one place consent events are written (`append_one`, `append_many`) and
removed (`remove_events`, which leaves a tombstone with the removed event's hashes so the
chain still verifies after an erasure, Art. 17). `ledger_chain_head` holds the newest link;
exporting it (`syncd ledger head`) lets a DPO keep it elsewhere, which is what catches a
rewrite of the whole chain by someone who can write the database.

Appends are serialised: two writers computing a link from the same head would fork the
chain. SQLite already serialises writers (BEGIN IMMEDIATE, syncd.db); on PostgreSQL the
head row is locked with SELECT ... FOR UPDATE until commit. The contact rows are locked
first, in id order, so a writer that holds the head never waits for a contact another
writer holds while that writer waits for the head (no deadlock with an import)."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from syncd.clock import as_utc, utcnow
from syncd.db import insert_ignoring_duplicates, insert_many_ignoring_duplicates
from syncd.schema import ConsentEvent, Contact, LedgerChainHead, LedgerTombstone, UtcDateTime

# The link before the first event.
GENESIS = "0" * 64
HEAD_ID = 1
# Versioned: a future change of the hashed fields starts "v2" and verify knows both.
HASH_VERSION = "syncd-ledger-v1"
# The content a link covers: every column except the row id (given by the database) and
# the chain columns themselves. Order matters: it is the order they are hashed in.
HASHED_FIELDS = (
    "contact_id", "purpose", "action", "occurred_at", "recorded_at", "source",
    "email_at_time", "form_url", "text_version", "privacy_notice_version", "ip",
    "user_agent", "confirmation_token_hash", "reason", "campaign_id", "dedupe_key",
)
_CHUNK = 900  # bound parameters per statement


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return value


def event_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """The link of one event: SHA-256 over the version, the previous link and the content."""
    content = [_canonical(row.get(name)) for name in HASHED_FIELDS]  # absent is NULL
    payload = json.dumps([HASH_VERSION, prev_hash, content], separators=(",", ":"),
                         ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    updated_at: datetime | None


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# Built once: the single append is on the webhook hot path (statement construction and
# ORM execution cost more than the round trips), so it runs Core statements as the purge
# does (syncd.webhooks.purge).
_LOCK_CONTACT = (select(Contact.id).where(Contact.id == bindparam("contact_id"))
                 .with_for_update())
_HEAD = select(LedgerChainHead.seq, LedgerChainHead.hash, LedgerChainHead.updated_at).where(
    LedgerChainHead.id == HEAD_ID)
_HEAD_FOR_UPDATE = _HEAD.with_for_update()
_MOVE_HEAD = (update(LedgerChainHead).where(LedgerChainHead.id == HEAD_ID)
              .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"),
                      updated_at=bindparam("now")))


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
    for start in range(0, len(ids), _CHUNK):
        conn.execute(select(Contact.id).where(Contact.id.in_(ids[start:start + _CHUNK]))
                     .order_by(Contact.id).with_for_update())


def _lock(session: Session, contact_ids: Iterable[int], *, contacts_locked: bool = False
          ) -> Head:
    """Take the chain (and, on PostgreSQL, the contacts) for this transaction; the head."""
    postgres = _postgres(session)
    if postgres and not contacts_locked:
        lock_contacts(session, contact_ids)
    conn = session.connection()
    query = _HEAD_FOR_UPDATE if postgres else _HEAD
    found = conn.execute(query).first()
    if found is None:  # a database emptied by hand (TRUNCATE): start the head row again
        insert_ignoring_duplicates(session, LedgerChainHead.__table__, {
            "id": HEAD_ID, "seq": 0, "hash": GENESIS, "updated_at": utcnow()})
        found = conn.execute(query).one()
    return Head(int(found[0]), str(found[1]), found[2])


def _link(rows: Sequence[dict[str, Any]], head: Head) -> Head:
    """Give each row its place and links after `head`; returns the new head."""
    seq, prev = head.seq, head.hash
    for row in rows:
        seq += 1
        row["chain_seq"] = seq
        row["chain_prev"] = prev
        prev = row["chain_hash"] = event_hash(prev, row)
    return Head(seq, prev, utcnow())


def _move(session: Session, head: Head) -> None:
    session.connection().execute(_MOVE_HEAD, {"new_seq": head.seq, "new_hash": head.hash,
                                              "now": head.updated_at})


def append_one(session: Session, row: dict[str, Any], *, contacts_locked: bool = False
               ) -> bool:
    """Insert one event row (`ledger.event_row`) unless its dedupe key is there already.
    True when inserted; then it is linked after the head and the head moves to it.
    `contacts_locked`: the caller took `lock_contacts` for this contact already. The head
    stays locked until commit, so callers append as late in their transaction as they can."""
    head = _lock(session, [int(row["contact_id"])], contacts_locked=contacts_locked)
    new_head = _link([row], head)
    if session.connection().execute(_insert_event(session.get_bind().dialect.name),
                                    row).first() is None:
        return False
    _move(session, new_head)
    return True


@functools.lru_cache(maxsize=2)
def _insert_event(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: a duplicate returns no row."""
    table: Any = ConsentEvent.__table__
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(table).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table).on_conflict_do_nothing()
    return stmt.returning(table.c.id)


def append_many(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert many event rows in a few multi-row statements, skipping dedupe keys already
    stored (or repeated in `rows`). Returns the dedupe keys inserted."""
    if not rows:
        return set()
    head = _lock(session, (int(r["contact_id"]) for r in rows))
    keys = [str(r["dedupe_key"]) for r in rows]
    known: set[str] = set()
    for start in range(0, len(keys), _CHUNK):  # read under the lock: no one adds meanwhile
        known.update(session.scalars(select(ConsentEvent.dedupe_key).where(
            ConsentEvent.dedupe_key.in_(keys[start:start + _CHUNK]))))
    fresh: list[dict[str, Any]] = []
    for row in rows:
        if row["dedupe_key"] not in known:
            known.add(row["dedupe_key"])
            fresh.append(row)
    if not fresh:
        return set()
    new_head = _link(fresh, head)
    table = ConsentEvent.__table__
    inserted = insert_many_ignoring_duplicates(session, table, fresh, table.c.dedupe_key)
    if len(inserted) != len(fresh):  # someone wrote events without the chain lock
        raise RuntimeError("consent ledger: an event was written outside the chain lock; "
                           "nothing of this batch is kept")
    _move(session, new_head)
    return inserted


def remove_events(session: Session, contact_id: int, *, reason: str) -> int:
    """Delete a contact's events, leaving for each a tombstone with its place and hashes
    (no content): the chain still verifies and the gap is accounted for. The database
    refuses to delete an event without its tombstone (trigger of migration 0006)."""
    now = utcnow()
    source: Any = (select(ConsentEvent.chain_seq, ConsentEvent.id, ConsentEvent.chain_hash,
                          ConsentEvent.chain_prev, bindparam("now", type_=UtcDateTime()),
                          bindparam("reason", type_=String()))
                   .where(ConsentEvent.contact_id == contact_id))
    tombstones: Any = LedgerTombstone.__table__
    session.execute(insert(tombstones).from_select(
        ["seq", "event_id", "event_hash", "prev_hash", "removed_at", "reason"], source),
        {"now": now, "reason": reason})
    deleted = session.execute(delete(ConsentEvent).where(ConsentEvent.contact_id == contact_id)
                              .execution_options(synchronize_session=False))
    return int(getattr(deleted, "rowcount", 0) or 0)


def head(session: Session) -> Head:
    """The newest link, without taking the lock (for export and the status page)."""
    found = session.execute(select(LedgerChainHead.seq, LedgerChainHead.hash,
                                   LedgerChainHead.updated_at)
                            .where(LedgerChainHead.id == HEAD_ID)).first()
    if found is None:
        return Head(0, GENESIS, None)
    return Head(int(found[0]), str(found[1]), found[2])
