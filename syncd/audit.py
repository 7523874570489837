"""The audit trail: every change to consent, lists and suppression, by whom and why.
Entries name the contact by id, never by address."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.schema import AuditEntry


def record(session: Session, *, actor: str, action: str, contact_id: int | None,
           **details: Any) -> None:
    session.add(AuditEntry(at=utcnow(), actor=actor, action=action, contact_id=contact_id,
                           details=details))
