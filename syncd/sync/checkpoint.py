"""push_state writes: the write-ahead attempt marker before an ESP call, and the
checkpoint after the ESP answered (I8: nothing is marked pushed before the ESP confirmed
it).

The checkpoint is a compare-and-set on the contact revision that was READ: it stores
`settled_revision = read revision` and never moves it backwards, so a change that lands
while the push is in flight leaves the contact newer than its settled revision and the
next run pushes it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from syncd.clock import utcnow
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


_STATEMENTS: dict[tuple[str, str], Any] = {}
_SETTLED = ("settled_revision", "fingerprint", "esp_status", "esp_email", "parked_reason",
            "retry_after", "attempt_fingerprint", "updated_at")


def _statement(engine: Engine, kind: str) -> Any:
    """The upsert for this dialect, built once (building `excluded` costs more than
    running the statement for a chunk)."""
    key = (engine.dialect.name, kind)
    if key not in _STATEMENTS:
        stmt: Any = (postgresql.insert(_TABLE) if engine.dialect.name == "postgresql"
                     else sqlite.insert(_TABLE))
        excluded = stmt.excluded
        if kind == "attempt":
            stmt = stmt.on_conflict_do_update(
                index_elements=[_TABLE.c.contact_id, _TABLE.c.audience_id],
                set_={"attempt_fingerprint": excluded.attempt_fingerprint,
                      "updated_at": excluded.updated_at})
        else:
            stmt = stmt.on_conflict_do_update(
                index_elements=[_TABLE.c.contact_id, _TABLE.c.audience_id],
                set_={name: getattr(excluded, name) for name in _SETTLED},
                # Compare-and-set: never move the settled revision backwards.
                where=_TABLE.c.settled_revision <= excluded.settled_revision)
        _STATEMENTS[key] = stmt
    return _STATEMENTS[key]


def _upsert(engine: Engine, kind: str, rows: list[dict[str, Any]]) -> int:
    """One transaction. A contact erased while its push was in flight has no row to
    attach state to (foreign key): then only the contacts still present are written."""
    try:
        with engine.begin() as conn:
            conn.execute(_statement(engine, kind), rows)
        return len(rows)
    except IntegrityError:
        with engine.begin() as conn:
            present = set(conn.execute(select(Contact.id).where(
                Contact.id.in_([r["contact_id"] for r in rows]))).scalars())
            kept = [r for r in rows if r["contact_id"] in present]
            if kept:
                conn.execute(_statement(engine, kind), kept)
            return len(kept)


def mark_attempts(engine: Engine, audience_id: str, attempts: Sequence[tuple[int, str]]) -> None:
    """Record "sent, not yet confirmed" for contacts about to be added (before the call)."""
    if not attempts:
        return
    now = utcnow()
    _upsert(engine, "attempt", [
        {"contact_id": cid, "audience_id": audience_id, "settled_revision": 0,
         "attempt_fingerprint": fp, "updated_at": now} for cid, fp in attempts])


def settle(engine: Engine, audience_id: str, settlements: Sequence[Settlement]) -> int:
    """Write the ESP-confirmed outcome of these contacts in one transaction; returns rows."""
    if not settlements:
        return 0
    now = utcnow()
    return _upsert(engine, "settle", [
        {"contact_id": s.contact_id, "audience_id": audience_id,
         "settled_revision": s.settled_revision, "fingerprint": s.fingerprint,
         "esp_status": s.esp_status, "esp_email": s.esp_email,
         "parked_reason": s.parked_reason, "retry_after": s.retry_after,
         "attempt_fingerprint": s.attempt_fingerprint, "updated_at": now}
        for s in settlements])
