"""Suppression entries: keyed hashes that keep a person out after an unsubscribe, an abuse
complaint or an erasure, even if their contact record is gone (rule 8, I10). Adding and
renewing with their audit entries; the statements: syncd.store.suppressions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.consent.policy import SuppressionFact
from syncd.store import audit
from syncd.store import suppressions as stored
from syncd.store.suppressions import ALL_PURPOSES

__all__ = ["ALL_PURPOSES", "carry_over", "facts_by_hmac", "suppress"]


def suppress(session: Session, address_hmacs: Iterable[str], *, purpose: str, reason: str,
             actor: str, contact_id: int | None = None, created_at: datetime | None = None,
             renew: bool = True) -> bool:
    """Suppress these addresses for `purpose`, or move an existing entry forward to
    `created_at` when that is newer. True if any was added or moved.

    `created_at` (default now) lets a webhook date the entry at the moment the ESP saw
    the unsubscribe, so that out-of-order arrival gives the same policy outcome (I6).
    `renew=False` only adds: for a second report of the SAME unsubscribe (webhook and
    reconciliation pull), whose moments differ by a second."""
    moment = created_at or utcnow()
    return bool(_suppress(session, [stored.Entry(h, purpose, reason, moment)
                                    for h in sorted(set(address_hmacs))],
                          actor=actor, contact_id=contact_id, renew=renew))


def _suppress(session: Session, entries: list[stored.Entry], *, actor: str,
              contact_id: int | None, renew: bool) -> int:
    """Add or renew, with one audit entry for each entry that changed; how many did."""
    added, renewed = stored.add_or_renew(session, entries, renew=renew)
    action = {id(e): "suppressed" for e in added} | {id(e): "suppression_renewed"
                                                      for e in renewed}
    audit.append(session, [
        audit.AuditRow(actor=actor, action=action[id(e)], contact_id=contact_id,
                       details={"purpose": e.purpose, "reason": e.reason})
        for e in entries if id(e) in action])
    return len(action)


def facts_by_hmac(session: Session, hmacs: Iterable[str]) -> dict[str, list[SuppressionFact]]:
    return {mac: [SuppressionFact(purpose=e.purpose, reason=e.reason,
                                  created_at=e.created_at) for e in entries]
            for mac, entries in stored.by_hmac(session, hmacs).items()}


def carry_over(session: Session, *, old_hmac: str, new_hmac: str, actor: str,
               contact_id: int | None) -> int:
    """An address change keeps the old address's suppressions (upemail), with their
    original moment: a consent confirmed after that moment still counts (rule 6)."""
    old = stored.by_hmac(session, [old_hmac]).get(old_hmac, [])
    return _suppress(session, [stored.Entry(new_hmac, e.purpose, e.reason, e.created_at)
                               for e in old], actor=actor, contact_id=contact_id, renew=True)
