"""The sync's input, read from contacts and push_state: contacts whose revision is newer
than the one the ESP last settled for the audience (or with no push state there), in
chunks by id, each with its policy facts and list memberships. Memory is O(chunk).

Change notification: a run reads only the contacts MARKED since the last complete run of
its audience, so a run over a million unchanged contacts reads a cursor and one empty
index range. Every write that can make a contact a candidate sets contacts.change_mark
(syncd.schema.ChangeMark, the one expression of it): a revision bump or a creation, and
push state that lowers a settled revision (the audience pull). The mark must commit in
order with the cursor, and a run takes its `floor` BEFORE it reads anything:

- SQLite serialises writers: the mark is the newest mark plus one, read inside the
  writing transaction; the floor is the newest committed mark plus one. A write that
  commits after the floor was read has a mark >= the floor.
- PostgreSQL: a sequence does not commit in order. The mark is the writing transaction's
  id (xid8, 64 bits, never wraps); the floor is the xmin of a snapshot, below which every
  transaction has ended, so a transaction that commits after the floor was taken has an
  id >= the floor, even one that started (and wrote) long before. A later run re-reads
  the rows of transactions in flight at the boundary; the revision filter makes that
  harmless. (A transaction held open anywhere on the server holds the floors back: more
  is re-read, nothing missed.)

Only a complete run (succeeded, or refused by the safety limit) stores the floor it took
at its start as the audience's cursor; in the same transaction it marks again the
contacts it read and left unsettled (held, retry-later, failed), so that the next run
looks at them although they did not change. An interrupted, failed or dry run stores
nothing: the next run reads from the old cursor. No cursor (the first run, after the
migration), a re-plan of everyone, or more than NARROW_AT_MOST changed contacts: every
contact is read as before (then the narrowing would cost as much as the scan)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Text,
    and_,
    cast,
    func,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from syncd.keys import Keyring
from syncd.schema import ChangeMark, Contact, InternalList, ListMembership, PushState
from syncd.store import cursors, facts
from syncd.store.dialect import ids_among
from syncd.store.facts import Scope, StoredFacts

# Above this many changed contacts a run reads them all (each chunk's query would walk
# the whole changed range again).
NARROW_AT_MOST = 50_000
_CURSOR = "sync-changes:"  # + audience id: the floor of the last complete run
_PG_FLOOR = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
_SQLITE_FLOOR = select(func.coalesce(select(func.max(Contact.change_mark))
                                     .scalar_subquery(), 0) + 1)

# Most contacts have no imported attributes: skip the JSON decoder for "{}" (read as
# text: PostgreSQL's driver would decode every json value itself). The times
# come as the driver gives them (syncd.store.facts.moment reads them): most are NULL, and
# the column type's processing would run for every one of them.
_RAW_ATTRIBUTES = cast(Contact.attributes, Text)
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


@dataclass(frozen=True)
class Changes:
    """What a run reads: the contacts marked since its audience's cursor (`ids`, in id
    order; None: every contact), settled ones too when `everyone`; `floor`, taken before
    any read: the cursor a complete run stores."""

    floor: int
    ids: tuple[int, ...] | None = None
    everyone: bool = False


def changes(session: Session, audience_id: str, *, everyone: bool = False) -> Changes:
    """The run's floor, then the contacts marked since the stored cursor (None: no
    cursor, `everyone`, or more than NARROW_AT_MOST)."""
    conn = session.connection()
    floor = int(conn.exec_driver_sql(_PG_FLOOR).scalar_one()
                if conn.dialect.name == "postgresql" else conn.execute(_SQLITE_FLOOR).scalar_one())
    stored = cursors.read_text(session, _CURSOR + audience_id)
    if stored is None or everyone:
        return Changes(floor, everyone=everyone)
    # In mark order: the index's range, whatever the planner knows of the column.
    found = conn.execute(select(Contact.id).where(Contact.change_mark >= int(stored))
                         .order_by(Contact.change_mark).limit(NARROW_AT_MOST + 1)).scalars()
    ids = sorted(set(found))
    return Changes(floor) if len(ids) > NARROW_AT_MOST else Changes(floor, tuple(ids))


def complete(session: Session, audience_id: str, read: Changes) -> int:
    """A complete run: mark again the contacts it read that are candidates still (held,
    retry-later, failed: looked at again next run), and store its floor as the cursor.
    Returns how many were marked."""
    marked = 0
    if read.ids is None or read.ids:
        conn = session.connection()
        join, where = _pending(audience_id, 0, among=_among(conn.dialect.name, read.ids))
        left = (select(Contact.id).select_from(Contact).outerjoin(PushState, join)
                .where(where).correlate(None))
        marked = conn.execute(update(Contact).where(Contact.id.in_(left))
                              .values(change_mark=ChangeMark())).rowcount
    cursors.write_text(session, _CURSOR + audience_id, str(read.floor))
    return marked


def _among(dialect: str, ids: Sequence[int] | None) -> ColumnElement[bool] | None:
    """`contacts.id IN ids` as ONE bound parameter (an array; on SQLite a JSON array)."""
    return None if ids is None else ids_among(dialect, Contact.id, ids)


def _pending(audience_id: str, after: int, everyone: bool = False,
             among: ColumnElement[bool] | None = None) -> Scope:
    """`everyone`: every contact, settled or not (a changed target configuration, or
    `syncd sync --full`: everyone is planned again, parked contacts retried); `among`:
    only these (the changed ones)."""
    join = and_(PushState.contact_id == Contact.id, PushState.audience_id == audience_id)
    where = Contact.id > after if among is None else and_(Contact.id > after, among)
    if everyone:
        return join, where
    return join, and_(where, or_(PushState.contact_id.is_(None),
                                 Contact.revision > PushState.settled_revision))


def _count(conn: Connection, audience_id: str, everyone: bool,
           ids: Sequence[int] | None) -> int:
    if ids is not None and not ids:
        return 0
    join, where = _pending(audience_id, 0, everyone, _among(conn.dialect.name, ids))
    query = select(func.count()).select_from(Contact).outerjoin(PushState, join).where(where)
    return int(conn.execute(query).scalar_one())


def count(engine: Engine, audience_id: str, *, everyone: bool = False,
          ids: Sequence[int] | None = None) -> int:
    """How many contacts the next sync run looks at (`ids`: among these only)."""
    with engine.connect() as conn:
        return _count(conn, audience_id, everyone, ids)


def backlog(session: Session, audience_id: str) -> int:
    """Contacts whose newest revision the audience has not settled yet (the status page),
    counted among those marked since the cursor: a complete run marks again whatever it
    left unsettled, so none is below it; O(changes), like the run."""
    return _count(session.connection(), audience_id, False,
                  changes(session, audience_id).ids)


def _filter(audience_id: str, after: int, upto: int | None, live: Sequence[str] | None,
            pulled_at: datetime | None, *, everyone: bool = False,
            among: ColumnElement[bool] | None = None) -> Scope:
    join, where = _pending(audience_id, after, everyone, among)
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
           purchases: bool = True, ids: Sequence[int] | None = None) -> Iterator[Chunk]:
    """Chunks of candidates, in id order. `live`: only those syncd knows have one of
    these statuses at the ESP (the safety limit's pre-count of unsubscribes); `everyone`:
    settled contacts too; `purchases`: read them (the soft opt-in basis only needs them);
    `ids`: only these (Changes.ids, in id order), a chunk's worth at a time.

    Per chunk: the contacts (keyset by id), then their consent events and list
    memberships each in ONE query over the same filter bounded by the chunk's last id
    (no list of ids to bind); suppressions and the inbox by keyed hash."""
    after, taken = 0, 0
    while True:
        among = None
        if ids is not None:
            window = ids[taken : taken + chunk_size]
            if not len(window):
                return
            taken += len(window)
            among = _among(engine.dialect.name, window)
        join, where = _filter(audience_id, after, None, live, pulled_at, everyone=everyone,
                              among=among)
        query = (select(*_COLUMNS).select_from(Contact).outerjoin(PushState, join)
                 .where(where).order_by(Contact.id).limit(chunk_size))
        with engine.connect() as conn:
            rows = conn.execute(query).all()
            if not rows:
                if ids is None:
                    return
                continue
            last = rows[-1][0]
            scope = _filter(audience_id, after, last, live, pulled_at, everyone=everyone,
                            among=among)
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
