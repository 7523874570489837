"""Suppression entries: keyed hashes that keep a person out after an unsubscribe, an abuse
complaint or an erasure, even if their contact record is gone (rule 8, I10)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.consent.policy import SuppressionFact
from syncd.db import insert_ignoring_duplicates
from syncd.schema import Suppression
from syncd.store import audit

ALL_PURPOSES = "*"


def suppress(session: Session, *, address_hmac: str, purpose: str, reason: str, actor: str,
             contact_id: int | None = None, created_at: datetime | None = None,
             renew: bool = True) -> bool:
    """Add a suppression, or move an existing one for this address and purpose forward to
    `created_at` when that is newer. True if added or moved.

    `created_at` (default now) lets a webhook date the entry at the moment the ESP saw
    the unsubscribe, so that out-of-order arrival gives the same policy outcome (I6).
    The entry holds the NEWEST blocking moment: a person who unsubscribes a second time
    stays blocked against consent dated between the two (rule 6), also when no contact
    record holds the withdrawals. `renew=False` only adds: for a second report of the SAME
    unsubscribe (webhook and reconciliation pull), whose moments differ by a second."""
    moment = created_at or utcnow()
    added = insert_ignoring_duplicates(session, Suppression.__table__, {
        "address_hmac": address_hmac, "purpose": purpose, "reason": reason,
        "created_at": moment,
    })
    if added:  # audit_log has no foreign key: written at once, no ORM flush needed
        audit.record(session, actor=actor, action="suppressed", contact_id=contact_id,
                         purpose=purpose, reason=reason)
        return True
    if not renew:
        return False
    moved: int = getattr(session.execute(
        update(Suppression)
        .where(Suppression.address_hmac == address_hmac, Suppression.purpose == purpose,
               Suppression.created_at < moment)
        .values(created_at=moment, reason=reason)
        .execution_options(synchronize_session=False)
    ), "rowcount", 0)
    if moved:
        audit.record(session, actor=actor, action="suppression_renewed",
                         contact_id=contact_id, purpose=purpose, reason=reason)
    return bool(moved)


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
