"""Removing contacts with every row keyed to them (erasure, Art. 17, and the retention
rules): consent events leave tombstones (syncd.store.ledger), the rest goes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.orm import Session

from syncd.schema import AuditEntry, Contact, ListMembership, PushState
from syncd.store import ledger, purchases


def remove_contacts(session: Session, contact_ids: Sequence[int], *, reason: str) -> int:
    """Delete these contacts, their list memberships, purchases, push state and audit
    entries; their
    consent events leave tombstones with their hashes, so the ledger's chain still
    verifies. Returns the consent events removed."""
    ids = sorted(set(contact_ids))
    if not ids:
        return 0
    events = ledger.remove_events(session, ids, reason=reason)
    for start in range(0, len(ids), ledger.CHUNK):
        chunk = ids[start:start + ledger.CHUNK]
        session.execute(delete(ListMembership).where(ListMembership.contact_id.in_(chunk)))
        session.execute(delete(PushState).where(PushState.contact_id.in_(chunk)))
        purchases.delete_of_contacts(session, chunk)
        session.execute(delete(AuditEntry).where(AuditEntry.contact_id.in_(chunk)))
        session.execute(delete(Contact).where(Contact.id.in_(chunk)))
    return events
