"""The audit trail: every change to consent, lists and suppression, by whom and why.
Entries name the contact by id, never by address."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.schema import AuditEntry


def record(session: Session, *, actor: str, action: str, contact_id: int | None,
           **details: Any) -> None:
    session.add(AuditEntry(at=utcnow(), actor=actor, action=action, contact_id=contact_id,
                           details=details))


_INSERT = insert(AuditEntry)


def record_now(session: Session, *, actor: str, action: str, contact_id: int | None,
               **details: Any) -> None:
    """`record`, written at once in Core SQL (no ORM object, no flush): for single-event
    hot paths such as the webhook purge. Same row, same transaction."""
    session.connection().execute(_INSERT, {"at": utcnow(), "actor": actor, "action": action,
                                           "contact_id": contact_id, "details": details})
