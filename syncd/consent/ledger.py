"""The consent ledger: append-only evidence per contact and purpose (rule 4, Art. 7(1)).

Each event carries who, purpose, when, how (channel, form), what they were told (text and
privacy notice versions), where from (IP, user agent) and the confirmation proof. Every
write goes through syncd.consent.chain, which links it into the ledger's hash chain."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.consent import chain
from syncd.consent.policy import Action, ConsentFact
from syncd.db import insert_many
from syncd.schema import AuditEntry, ConsentEvent, Contact
from syncd.store import audit

if TYPE_CHECKING:
    from syncd.crm.store import ContactRef


@dataclass(frozen=True)
class ConsentRecord:
    purpose: str
    action: Action
    occurred_at: datetime
    source: str
    form_url: str | None = None
    text_version: str | None = None
    privacy_notice_version: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    confirmation_token_hash: str | None = None
    reason: str | None = None
    campaign_id: str | None = None

    def dedupe_key(self, email_key: str, salt: str = "") -> str:
        """Same content, same key: re-importing a file appends nothing."""
        content = asdict(self) | {"occurred_at": self.occurred_at.isoformat(),
                                  "email": email_key, "salt": salt}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _row(contact: Contact, record: ConsentRecord, dedupe_salt: str) -> dict[str, object]:
    return event_row(contact.id, contact.email_key, record, dedupe_salt)


def event_row(contact_id: int, email_key: str, record: ConsentRecord,
              dedupe_salt: str = "") -> dict[str, object]:
    """The consent_events row for `record` (what `append` inserts), for callers that hold
    the contact's id and address but no ORM object (the webhook purge, Core SQL)."""
    return {
        "contact_id": contact_id,
        "purpose": record.purpose,
        "action": str(record.action),
        "occurred_at": record.occurred_at,
        "recorded_at": utcnow(),
        "source": record.source,
        "email_at_time": email_key,
        "form_url": record.form_url,
        "text_version": record.text_version,
        "privacy_notice_version": record.privacy_notice_version,
        "ip": record.ip,
        "user_agent": record.user_agent,
        "confirmation_token_hash": record.confirmation_token_hash,
        "reason": record.reason,
        "campaign_id": record.campaign_id,
        "dedupe_key": record.dedupe_key(email_key, dedupe_salt),
    }


def _appended(session: Session, contact: Contact, record: ConsentRecord, actor: str) -> None:
    contact.revision += 1
    contact.updated_at = utcnow()
    audit.record(session, actor=actor, action=f"consent_{record.action}",
                 contact_id=contact.id, purpose=record.purpose, source=record.source,
                 occurred_at=record.occurred_at.isoformat())


def append(session: Session, contact: Contact, record: ConsentRecord, *, actor: str,
           dedupe_salt: str = "") -> bool:
    """Append one event unless the same one is there already. True when appended; the
    contact's revision is bumped so the next sync looks at it again."""
    inserted = chain.append_one(session, _row(contact, record, dedupe_salt))
    if inserted:
        _appended(session, contact, record, actor)
    return inserted


_RECORD_FIELDS = tuple(f.name for f in fields(ConsentRecord))


def _bulk_dedupe_key(record: ConsentRecord, email_key: str, salt: str) -> str:
    """`ConsentRecord.dedupe_key`, byte for byte, without `asdict`'s deep copy (which was
    a tenth of the bulk import's time); the fields are immutable values."""
    content = {name: getattr(record, name) for name in _RECORD_FIELDS} | {
        "occurred_at": record.occurred_at.isoformat(), "email": email_key, "salt": salt}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def append_many(session: Session, items: Sequence[tuple[ContactRef, ConsentRecord]], *,
                actor: str, dedupe_salt: str = "") -> int:
    """`append` for many events in a few multi-row statements (bulk import): the same
    dedupe (one INSERT that skips known dedupe keys, unique index) and an audit entry per
    appended event; each appended event adds a pending bump to its contact (written by
    `store.apply_revision_bumps`). Returns how many were appended."""
    now = utcnow()
    rows = []
    for contact, record in items:
        row = _row_values(contact.id, contact.email_key, record, now)
        row["dedupe_key"] = _bulk_dedupe_key(record, contact.email_key, dedupe_salt)
        rows.append(row)
    inserted = chain.append_many(session, rows)
    audit_rows = []
    for (contact, record), row in zip(items, rows, strict=True):
        if row["dedupe_key"] in inserted:
            inserted.discard(row["dedupe_key"])  # the same event twice in `items`: once
            contact.bumps += 1
            audit_rows.append({
                "at": now, "actor": actor, "action": f"consent_{record.action}",
                "contact_id": contact.id,
                "details": {"purpose": record.purpose, "source": record.source,
                            "occurred_at": record.occurred_at.isoformat()}})
    insert_many(session, AuditEntry.__table__, audit_rows)
    return len(audit_rows)


def _row_values(contact_id: int, email_key: str, record: ConsentRecord,
                now: datetime) -> dict[str, object]:
    return {
        "contact_id": contact_id, "purpose": record.purpose, "action": str(record.action),
        "occurred_at": record.occurred_at, "recorded_at": now, "source": record.source,
        "email_at_time": email_key, "form_url": record.form_url,
        "text_version": record.text_version,
        "privacy_notice_version": record.privacy_notice_version, "ip": record.ip,
        "user_agent": record.user_agent,
        "confirmation_token_hash": record.confirmation_token_hash, "reason": record.reason,
        "campaign_id": record.campaign_id,
    }


def fact(event: ConsentEvent) -> ConsentFact:
    """What the pure policy needs of a stored event."""
    return ConsentFact(purpose=event.purpose, action=Action(event.action),
                       occurred_at=event.occurred_at, source=event.source, ip=event.ip,
                       text_version=event.text_version)


def facts_by_contact(session: Session, contact_ids: Iterable[int]) -> dict[int, list[ConsentFact]]:
    ids = list(contact_ids)
    found: dict[int, list[ConsentFact]] = defaultdict(list)
    # Chunked: bound the number of bound parameters per statement.
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        query = select(ConsentEvent).where(ConsentEvent.contact_id.in_(chunk))
        for event in session.scalars(query):
            found[event.contact_id].append(fact(event))
    return found


def history(session: Session, contact_id: int) -> list[ConsentEvent]:
    return list(session.scalars(
        select(ConsentEvent).where(ConsentEvent.contact_id == contact_id)
        .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
    ))
