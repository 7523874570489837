"""push_state writes: the write-ahead attempt marker before an ESP call, and the
checkpoint after the ESP answered (I8: nothing is marked pushed before the ESP confirmed
it).

The checkpoint is a compare-and-set on the contact revision that was READ: it stores
`settled_revision = read revision` and never moves it backwards, so a change that lands
while the push is in flight leaves the contact newer than its settled revision and the
next run pushes it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, select
from sqlalchemy.exc import IntegrityError

from syncd.clock import as_utc, utcnow
from syncd.schema import Contact, PushState

_TABLE: Table = PushState.__table__  # type: ignore[assignment]


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


_SETTLED = ("settled_revision", "fingerprint", "esp_status", "esp_email", "parked_reason",
            "retry_after", "attempt_fingerprint", "updated_at", "esp_origin",
            "pending_requested_at")
_KEEP_WHEN_NULL = frozenset({"esp_origin", "pending_requested_at"})
_SETTLE_COLUMNS = ("contact_id", "audience_id", *_SETTLED)
_ATTEMPT_COLUMNS = ("contact_id", "audience_id", "settled_revision", "attempt_fingerprint",
                    "updated_at")
_SQL: dict[tuple[str, str], str] = {}


def _sql(engine: Engine, kind: str) -> str:
    """The upsert as driver SQL, one executemany per batch: SQLAlchemy's per-row
    parameter processing cost more than the database work. The same text runs on SQLite
    and PostgreSQL (both have INSERT .. ON CONFLICT .. DO UPDATE with `excluded`); only
    the placeholder differs."""
    key = (engine.dialect.name, kind)
    if key not in _SQL:
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        columns = _ATTEMPT_COLUMNS if kind == "attempt" else _SETTLE_COLUMNS
        updated = (("attempt_fingerprint", "updated_at") if kind == "attempt" else _SETTLED)
        # Built from the constant column names above only; every value is bound.
        sql = (f"INSERT INTO {_TABLE.name} ({', '.join(columns)}) "  # noqa: S608
               f"VALUES ({', '.join([mark] * len(columns))}) "
               "ON CONFLICT (contact_id, audience_id) DO UPDATE SET "
               + ", ".join(f"{name} = COALESCE(excluded.{name}, {_TABLE.name}.{name})"
                           if name in _KEEP_WHEN_NULL else f"{name} = excluded.{name}"
                           for name in updated))
        if kind == "settle":
            # Compare-and-set: never move the settled revision backwards.
            sql += f" WHERE {_TABLE.name}.settled_revision <= excluded.settled_revision"
        _SQL[key] = sql
    return _SQL[key]


def _moment_param(engine: Engine) -> Callable[[datetime | None], Any]:
    """A datetime as the column type binds it (SQLite: UTC text in SQLAlchemy's format)."""
    process = _TABLE.c.updated_at.type.dialect_impl(engine.dialect).bind_processor(
        engine.dialect)

    def bind(value: datetime | None) -> Any:
        if value is None:
            return None
        value = as_utc(value)
        return process(value) if process is not None else value
    return bind


def _upsert(engine: Engine, kind: str, rows: list[tuple[Any, ...]]) -> int:
    """One transaction. A contact erased while its push was in flight has no row to
    attach state to (foreign key): then only the contacts still present are written."""
    sql = _sql(engine, kind)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(sql, rows)
        return len(rows)
    except IntegrityError:
        with engine.begin() as conn:
            present = set(conn.execute(select(Contact.id).where(
                Contact.id.in_([r[0] for r in rows]))).scalars())
            kept = [r for r in rows if r[0] in present]
            if kept:
                conn.exec_driver_sql(sql, kept)
            return len(kept)


def mark_attempts(engine: Engine, audience_id: str, attempts: Sequence[tuple[int, str]]) -> None:
    """Record "sent, not yet confirmed" for contacts about to be added (before the call)."""
    if not attempts:
        return
    now = _moment_param(engine)(utcnow())
    _upsert(engine, "attempt", [(cid, audience_id, 0, fp, now) for cid, fp in attempts])


def settle(engine: Engine, audience_id: str, settlements: Sequence[Settlement]) -> int:
    """Write the ESP-confirmed outcome of these contacts in one transaction; returns rows."""
    if not settlements:
        return 0
    bind = _moment_param(engine)
    now = bind(utcnow())
    return _upsert(engine, "settle", [
        (s.contact_id, audience_id, s.settled_revision, s.fingerprint, s.esp_status,
         s.esp_email, s.parked_reason, None if s.retry_after is None else bind(s.retry_after),
         s.attempt_fingerprint, now, s.esp_origin,
         None if s.pending_requested_at is None else bind(s.pending_requested_at))
        for s in settlements])
