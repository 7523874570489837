"""Every address a person had: an address change keeps one person (I12).

A contact's earlier addresses are kept as keyed hashes only (least data). A suppression
of any of them blocks all of them: a stale CRM export of an OLD address of someone who
changed address and then unsubscribed is the same person, and stays out. Looked up when
the sync reads its candidates (syncd.sync.source), so it holds whatever order the
address change and the unsubscribe came in. The statements: syncd.store.address_history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from syncd.store import address_history as stored
from syncd.store.address_history import earlier_of_contacts, same_person

__all__ = ["earlier_of_contacts", "hmacs_of", "remember", "same_person"]


def remember(session: Session, *, contact_id: int, old_hmac: str, at: datetime) -> None:
    """The contact no longer has the address with this keyed hash."""
    stored.remember(session, [(contact_id, old_hmac, at)])


def hmacs_of(session: Session, contact_id: int) -> list[str]:
    """The keyed hashes of every earlier address of this contact."""
    return sorted(earlier_of_contacts(session.connection(), [contact_id]).get(contact_id, ()))
