"""The push's writes of push_state: the write-ahead attempt marker before a call and the
checkpoint after the answer (I8), many contacts per statement.

The checkpoint is a compare-and-set on the contact revision that was READ: it stores
`settled_revision = read revision` and never moves it backwards, so a change that lands
while the push is in flight leaves the contact newer than its settled revision and the
next run pushes it."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Dialect, Engine, Table, bindparam, func, select
from sqlalchemy.exc import IntegrityError

from syncd.clock import utcnow
from syncd.frozen import quick_init
from syncd.schema import Contact, PushState

_TABLE = cast(Table, PushState.__table__)


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


def _upsert(dialect: str, kind: str, arrays: bool) -> Any:
    """INSERT .. ON CONFLICT (contact_id, audience_id) DO UPDATE. The rows travel as bound
    parameters: of one executemany, or (`arrays`, PostgreSQL) as one array per column of
    ONE statement, `unnest`ed into rows: psycopg's executemany costs ~20 us per row."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY, insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(_TABLE)
    if arrays:
        columns = _ATTEMPT_COLUMNS if kind == "attempt" else _SETTLE_COLUMNS
        rows = func.unnest(*[bindparam(name, type_=ARRAY(_TABLE.c[name].type))
                             for name in columns]).table_valued(*columns).render_derived()
        stmt = stmt.from_select(list(columns), select(*[rows.c[name] for name in columns]))
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
    arrays: bool = False  # the driver takes one dict: column -> the rows' values

    def params(self, rows: Sequence[Row]) -> Any:
        if self.arrays:
            return {name: [row[i] for row in rows] for i, name in enumerate(self.columns)}
        if self.named:
            return [dict(zip(self.columns, row, strict=True)) for row in rows]
        if self.pick is not None:
            return [self.pick(row) for row in rows]
        return list(rows)


@functools.lru_cache(maxsize=8)
def _compiled(dialect: Dialect, kind: str, arrays: bool) -> _Compiled:
    """The checkpoint is on the push's hot path, where SQLAlchemy's per-row parameter
    processing of `conn.execute(stmt, rows)` cost twice the database's work: the rows go
    to the driver as they are, every value still a bound parameter."""
    columns = _ATTEMPT_COLUMNS if kind == "attempt" else _SETTLE_COLUMNS
    compiled = _upsert(dialect.name, kind, arrays).compile(
        dialect=dialect, column_keys=None if arrays else list(columns))
    if arrays:
        # psycopg's binary format (`%(name)b`): its text arrays quote-check every value.
        sql = compiled.string
        for name in columns:
            sql = sql.replace(f"%({name})s", f"%({name})b")
        return _Compiled(sql, columns, None, named=True, arrays=True)
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
    # As arrays on PostgreSQL, unless a contact comes twice (one statement cannot
    # update a row twice; the rows one by one apply both, in order).
    arrays = engine.dialect.name == "postgresql" and len({r[0] for r in rows}) == len(rows)
    compiled = _compiled(engine.dialect, kind, arrays)
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
