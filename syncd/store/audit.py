"""The audit trail (table audit_log): every change to consent, lists and suppression, by
whom and why. Entries name the contact by id, never by address."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Dialect, Table
from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.schema import AuditEntry

_TABLE = cast(Table, AuditEntry.__table__)
_COLUMNS = ("at", "actor", "action", "contact_id", "details")


@dataclass(frozen=True)
class AuditRow:
    """One audit_log entry to write."""

    actor: str
    action: str
    contact_id: int | None
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None  # None: now


def append(session: Session, rows: Sequence[AuditRow]) -> None:
    """Write audit entries in the caller's transaction: one multi-row INSERT, no ORM
    object, no flush (the one write path of audit_log)."""
    if not rows:
        return
    now = utcnow()
    conn = session.connection()
    sql, order, (bind_at, bind_details) = _compiled(conn.dialect)
    params: list[Any] = []
    for row in rows:
        values = {"at": bind_at(row.at or now), "actor": row.actor, "action": row.action,
                  "contact_id": row.contact_id, "details": bind_details(row.details)}
        params.append(values if order is None else tuple(values[name] for name in order))
    conn.exec_driver_sql(sql, params)


@functools.lru_cache(maxsize=4)
def _compiled(dialect: Dialect) -> tuple[
        str, tuple[str, ...] | None, tuple[Callable[[Any], Any], Callable[[Any], Any]]]:
    """The INSERT compiled once per database: its SQL, the order of its positional
    parameters (None: named) and the bind processors of `at` and `details` (the columns'
    own, as SQLAlchemy would apply them). Every change writes audit rows, and
    SQLAlchemy's per-row parameter processing cost more than the database's work; the
    rows still travel as bound parameters of one executemany."""
    compiled = _TABLE.insert().compile(dialect=dialect, column_keys=list(_COLUMNS),
                                      for_executemany=True)  # no RETURNING
    order = tuple(compiled.positiontup or ()) if compiled.positional else None

    def processor(name: str) -> Callable[[Any], Any]:
        found = _TABLE.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        return found if found is not None else _same

    return compiled.string, order, (processor("at"), processor("details"))


def _same(value: Any) -> Any:
    return value


def record(session: Session, *, actor: str, action: str, contact_id: int | None,
           **details: Any) -> None:
    """One entry, now: `append` with a list of one."""
    append(session, [AuditRow(actor=actor, action=action, contact_id=contact_id,
                              details=details)])
