"""What the ESP last confirmed per contact and audience (table push_state): the
write-ahead attempt marker before a call, the checkpoint after the answer (I8), and
Mailchimp's own record of its members as the audience pull and reconciliation read it.

The checkpoint is a compare-and-set on the contact revision that was READ: it stores
`settled_revision = read revision` and never moves it backwards, so a change that lands
while the push is in flight leaves the contact newer than its settled revision and the
next run pushes it."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Dialect, Engine, Table, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.frozen import quick_init
from syncd.schema import Contact, PushState

_TABLE = cast(Table, PushState.__table__)
IN_CHUNK = 900


@quick_init
@dataclass(frozen=True)
class Settlement:
    contact_id: int
    settled_revision: int
    fingerprint: str | None
    esp_status: str | None
    esp_email: str | None
    parked_reason: str | None = None
    retry_after: datetime | None = None
    # Keep the attempt marker (the outcome of a write is unknown): failed transiently.
    attempt_fingerprint: str | None = None
    # Kept as they are when None (COALESCE): who added the member, and when syncd last
    # asked Mailchimp for `pending` (the only `subscribe` that can be a confirmation).
    esp_origin: str | None = None
    pending_requested_at: datetime | None = None
    # Kept as they are when None: the GDPR permissions this write sent (JSON, id ->
    # enabled; syncd.sync.permission_moves compares what Mailchimp has later against them).
    esp_permissions: str | None = None


_SETTLED = ("settled_revision", "fingerprint", "esp_status", "esp_email", "parked_reason",
            "retry_after", "attempt_fingerprint", "updated_at", "esp_origin",
            "pending_requested_at", "esp_permissions")
_KEEP_WHEN_NULL = frozenset({"esp_origin", "pending_requested_at", "esp_permissions"})


# The rows' columns in the table's order, which the compiled INSERT's parameters follow
# (SQLite: the rows go to the driver as they are, with no reordering copy per row).
_ATTEMPT_COLUMNS = ("contact_id", "audience_id", "settled_revision", "updated_at",
                    "attempt_fingerprint")
_SETTLE_COLUMNS = ("contact_id", "audience_id", "settled_revision", "fingerprint",
                   "esp_status", "esp_email", "parked_reason", "updated_at",
                   "attempt_fingerprint", "retry_after", "esp_origin", "pending_requested_at",
                   "esp_permissions")
Row = tuple[Any, ...]  # the values of one upsert, in _ATTEMPT_COLUMNS or _SETTLE_COLUMNS order


def _upsert(dialect: str, kind: str) -> Any:
    """INSERT .. ON CONFLICT (contact_id, audience_id) DO UPDATE; the rows travel as bound
    parameters of one executemany."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(_TABLE)
    updated = ("attempt_fingerprint", "updated_at") if kind == "attempt" else _SETTLED
    values = {name: (func.coalesce(stmt.excluded[name], _TABLE.c[name])
                     if name in _KEEP_WHEN_NULL else stmt.excluded[name])
              for name in updated}
    # Compare-and-set: a settlement never moves the settled revision backwards.
    where = (_TABLE.c.settled_revision <= stmt.excluded.settled_revision
             if kind == "settle" else None)
    return stmt.on_conflict_do_update(index_elements=["contact_id", "audience_id"],
                                      set_=values, where=where)


@dataclass(frozen=True)
class _Compiled:
    """The upsert of one kind compiled once per database: its SQL and how a row (values
    in the kind's column order) becomes the driver's parameters."""

    sql: str
    columns: tuple[str, ...]
    pick: Callable[[Row], Any] | None  # positional, in another order than the row's
    named: bool  # the driver takes a dict per row

    def params(self, rows: Iterable[Row]) -> list[Any]:
        if self.named:
            return [dict(zip(self.columns, row, strict=True)) for row in rows]
        if self.pick is not None:
            return [self.pick(row) for row in rows]
        return list(rows)


@functools.lru_cache(maxsize=8)
def _compiled(dialect: Dialect, kind: str) -> _Compiled:
    """The checkpoint is on the push's hot path, where SQLAlchemy's per-row parameter
    processing of `conn.execute(stmt, rows)` cost twice the database's work: the rows go
    to the driver as they are, one executemany, every value still a bound parameter."""
    columns = _ATTEMPT_COLUMNS if kind == "attempt" else _SETTLE_COLUMNS
    compiled = _upsert(dialect.name, kind).compile(dialect=dialect, column_keys=list(columns))
    if not compiled.positional:
        return _Compiled(compiled.string, columns, None, named=True)
    order = tuple(compiled.positiontup or ())
    pick = (None if order == columns
            else operator.itemgetter(*(columns.index(name) for name in order)))
    return _Compiled(compiled.string, columns, pick, named=False)


@functools.lru_cache(maxsize=8)
def _moment_binder(dialect: Dialect) -> Callable[[datetime], Any]:
    """A timestamp as push_state's UTC columns bind it on this database (all alike)."""
    process = _TABLE.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return lambda value: value
    return cast(Callable[[datetime], Any], process)


def _write(engine: Engine, kind: str, rows: list[Row]) -> int:
    """One transaction. A contact erased while its push was in flight has no row to
    attach state to (foreign key): then only the contacts still present are written."""
    compiled = _compiled(engine.dialect, kind)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(compiled.sql, compiled.params(rows))
        return len(rows)
    except IntegrityError:
        with engine.begin() as conn:
            present = set(conn.execute(select(Contact.id).where(
                Contact.id.in_([r[0] for r in rows]))).scalars())
            kept = [r for r in rows if r[0] in present]
            if kept:
                conn.exec_driver_sql(compiled.sql, compiled.params(kept))
            return len(kept)


def mark_attempts(engine: Engine, audience_id: str, attempts: Sequence[tuple[int, str]]) -> None:
    """Record "sent, not yet confirmed" (contact id, fingerprint) before the call."""
    if not attempts:
        return
    now = _moment_binder(engine.dialect)(utcnow())
    _write(engine, "attempt", [(cid, audience_id, 0, now, fp) for cid, fp in attempts])


def settle(engine: Engine, audience_id: str, settlements: Sequence[Settlement]) -> int:
    """Write the ESP-confirmed outcome of these contacts in one transaction; returns rows."""
    if not settlements:
        return 0
    bind = _moment_binder(engine.dialect)
    now = bind(utcnow())
    # In _SETTLE_COLUMNS order. A NULL is bound as it is (no processing): `excluded`
    # sees it exactly as a column left out; the timestamps are processed once each.
    rows = [(s.contact_id, audience_id, s.settled_revision, s.fingerprint, s.esp_status,
             s.esp_email, s.parked_reason, now, s.attempt_fingerprint,
             None if s.retry_after is None else bind(s.retry_after), s.esp_origin,
             None if s.pending_requested_at is None else bind(s.pending_requested_at),
             s.esp_permissions)
            for s in settlements]
    return _write(engine, "settle", rows)


def count_live(engine: Engine, audience_id: str, live: Sequence[str]) -> int:
    """Members syncd knows have one of the `live` statuses at the ESP."""
    query = select(func.count()).select_from(_TABLE).where(
        _TABLE.c.audience_id == audience_id, _TABLE.c.esp_status.in_(list(live)))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


@dataclass(frozen=True)
class MemberState:
    """What push_state holds of a member's record at Mailchimp (read or written)."""

    contact_id: int
    settled_revision: int
    fingerprint: str | None
    esp_status: str | None
    esp_email: str | None
    esp_last_changed: datetime | None
    esp_opt_at: datetime | None
    esp_opt_ip: str | None
    esp_origin: str | None
    parked_reason: str | None
    esp_permissions: str | None = None  # JSON, permission id -> enabled (as read or sent)


_STATE = tuple(_TABLE.c[name] for name in (
    "contact_id", "settled_revision", "fingerprint", "esp_status", "esp_email",
    "esp_last_changed", "esp_opt_at", "esp_opt_ip", "esp_origin", "parked_reason",
    "esp_permissions"))
_OBSERVED = ("settled_revision", "fingerprint", "esp_status", "esp_email",
             "esp_last_changed", "esp_opt_at", "esp_opt_ip", "esp_origin", "parked_reason",
             "esp_permissions")
_UPDATE_OBSERVED = (update(_TABLE).where(_TABLE.c.contact_id == bindparam("b_contact_id"),
                                         _TABLE.c.audience_id == bindparam("b_audience_id"))
                    .values({name: bindparam(f"b_{name}")
                             for name in (*_OBSERVED, "updated_at")}))


def member_states(session: Session, audience_id: str,
                  contact_ids: Iterable[int]) -> dict[int, MemberState]:
    ids = sorted(set(contact_ids))
    found: dict[int, MemberState] = {}
    for start in range(0, len(ids), IN_CHUNK):
        for row in session.connection().execute(select(*_STATE).where(
                _TABLE.c.audience_id == audience_id,
                _TABLE.c.contact_id.in_(ids[start : start + IN_CHUNK]))):
            found[row[0]] = MemberState(*row)
    return found


def record_states(session: Session, audience_id: str, *, new: Sequence[MemberState],
                  changed: Sequence[MemberState]) -> None:
    """Insert the states of members not known yet and overwrite the observed fields of
    the others: one executemany each."""
    now = utcnow()
    conn = session.connection()
    if new:
        conn.execute(_TABLE.insert(), [
            {**asdict(s), "audience_id": audience_id, "updated_at": now} for s in new])
    if changed:
        conn.execute(_UPDATE_OBSERVED, [
            {"b_contact_id": s.contact_id, "b_audience_id": audience_id, "b_updated_at": now,
             **{f"b_{name}": getattr(s, name) for name in _OBSERVED}} for s in changed])


def set_status(session: Session, audience_id: str, contact_ids: Iterable[int],
               status: str) -> None:
    """What syncd itself just did to these members at the ESP (an operator's remedy)."""
    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), IN_CHUNK):
        session.connection().execute(update(_TABLE).where(
            _TABLE.c.audience_id == audience_id,
            _TABLE.c.contact_id.in_(ids[start : start + IN_CHUNK])).values(esp_status=status))


@dataclass(frozen=True)
class Pending:
    """What syncd knows of a contact's member in an audience: its status and when syncd
    asked Mailchimp for a double opt-in (webhook apply's subscribe)."""

    esp_status: str | None
    pending_requested_at: datetime | None


# Built once: webhook apply is the hot path.
_LEARN = (update(PushState)
          .where(PushState.contact_id == bindparam("cid"),
                 PushState.audience_id == bindparam("audience"),
                 or_(PushState.esp_last_changed.is_(None),
                     PushState.esp_last_changed <= bindparam("moment")))
          .values(esp_status=bindparam("status"), esp_last_changed=bindparam("moment")))


def learn_status(session: Session, contact_id: int, audience: str, status: str,
                 moment: datetime) -> None:
    """The member's status as Mailchimp reported it at `moment`, unless a later report
    is known already."""
    session.connection().execute(_LEARN, {"cid": contact_id, "audience": audience,
                                          "status": status, "moment": moment})


def pending(session: Session, contact_id: int, audience: str) -> Pending | None:
    found = session.connection().execute(
        select(PushState.esp_status, PushState.pending_requested_at)
        .where(PushState.contact_id == contact_id, PushState.audience_id == audience)).first()
    return None if found is None else Pending(*found)


def record_confirmation(session: Session, contact_id: int, audience: str, ip: str,
                        moment: datetime) -> None:
    """Mailchimp's double opt-in confirmation: the member is subscribed, with its proof."""
    session.connection().execute(
        update(PushState)
        .where(PushState.contact_id == contact_id, PushState.audience_id == audience)
        .values(esp_status="subscribed", esp_opt_ip=ip, esp_opt_at=moment))


def follow_address(session: Session, contact_id: int, audience: str | None, email: str,
                   moment: datetime) -> None:
    """The member (in `audience`, or every audience) now has this address."""
    query = update(PushState).where(PushState.contact_id == contact_id,
                                    or_(PushState.esp_email.is_(None),
                                        PushState.esp_email != email))
    if audience is not None:
        query = query.where(PushState.audience_id == audience)
    session.connection().execute(query.values(esp_email=email, updated_at=moment))
