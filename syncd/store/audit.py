"""The audit trail (table audit_log): every change to consent, lists and suppression, by
whom and why. Entries name the contact by id, never by address."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.schema import AuditEntry

_INSERT = insert(AuditEntry)


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
    session.connection().execute(_INSERT, [
        {"at": row.at or now, "actor": row.actor, "action": row.action,
         "contact_id": row.contact_id, "details": row.details} for row in rows])


def record(session: Session, *, actor: str, action: str, contact_id: int | None,
           **details: Any) -> None:
    """One entry, now: `append` with a list of one."""
    append(session, [AuditRow(actor=actor, action=action, contact_id=contact_id,
                              details=details)])
