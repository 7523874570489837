"""Suppression entries: keyed hashes that keep a person out after an unsubscribe, an abuse
complaint or an erasure, even if their contact record is gone (rule 8, I10)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from syncd import audit
from syncd.clock import utcnow
from syncd.consent.policy import SuppressionFact
from syncd.db import insert_ignoring_duplicates
from syncd.schema import Suppression

ALL_PURPOSES = "*"


def suppress(session: Session, *, address_hmac: str, purpose: str, reason: str, actor: str,
             contact_id: int | None = None, created_at: datetime | None = None) -> bool:
    """Add a suppression unless one exists for this address and purpose. True if added.
    `created_at` (default now) lets a webhook date the entry at the moment the ESP saw
    the unsubscribe, so that out-of-order arrival gives the same policy outcome (I6)."""
    added = insert_ignoring_duplicates(session, Suppression.__table__, {
        "address_hmac": address_hmac, "purpose": purpose, "reason": reason,
        "created_at": created_at or utcnow(),
    })
    if added:  # audit_log has no foreign key: written at once, no ORM flush needed
        audit.record_now(session, actor=actor, action="suppressed", contact_id=contact_id,
                         purpose=purpose, reason=reason)
    return added


def facts_by_hmac(session: Session, hmacs: Iterable[str]) -> dict[str, list[SuppressionFact]]:
    keys = list(hmacs)
    found: dict[str, list[SuppressionFact]] = defaultdict(list)
    for start in range(0, len(keys), 900):
        chunk = keys[start : start + 900]
        for row in session.scalars(select(Suppression).where(Suppression.address_hmac.in_(chunk))):
            found[row.address_hmac].append(
                SuppressionFact(purpose=row.purpose, reason=row.reason, created_at=row.created_at))
    return found


def carry_over(session: Session, *, old_hmac: str, new_hmac: str, actor: str,
               contact_id: int | None) -> int:
    """An address change keeps the old address's suppressions (upemail), with their
    original moment: a consent confirmed after that moment still counts (rule 6)."""
    rows = list(session.scalars(select(Suppression).where(Suppression.address_hmac == old_hmac)))
    return sum(suppress(session, address_hmac=new_hmac, purpose=row.purpose,
                        reason=row.reason, actor=actor, contact_id=contact_id,
                        created_at=row.created_at) for row in rows)
