"""The audit trail (table audit_log): every change to consent, lists and suppression, by
whom and why. Entries name the contact by id, never by address."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.schema import AuditEntry
from syncd.store.dialect import insert_rows

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
    object, no flush (the one write path of audit_log). Every change writes audit rows,
    so they go through the store's plain insert (SQLAlchemy's per-row parameter
    processing cost more than the database's work)."""
    if rows:
        now = utcnow()
        insert_rows(session, _TABLE, _COLUMNS, ((row.at or now, row.actor, row.action,
                                                 row.contact_id, row.details) for row in rows))


def record(session: Session, *, actor: str, action: str, contact_id: int | None,
           **details: Any) -> None:
    """One entry, now: `append` with a list of one."""
    append(session, [AuditRow(actor=actor, action=action, contact_id=contact_id,
                              details=details)])
