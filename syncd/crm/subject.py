"""Everything syncd holds about one person, gathered once (for `contacts export`, the
access and portability answer of Art. 15 and 20, and for `contacts proof`), and the
export document in its documented schema (docs/subject-data.md, "syncd-subject-export/1").

Found by the address: the contact with that address, the suppression entries and the
stored webhooks whose keyed hash matches the address or any address the person had in the
ledger (`email_at_time`), so that an erased person still learns what stays (a keyed hash)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from syncd.addresses import parse_address
from syncd.clock import utcnow
from syncd.consent import ledger
from syncd.keys import Keyring
from syncd.schema import (
    AuditEntry,
    ConsentEvent,
    Contact,
    InternalList,
    ListMembership,
    PushState,
    Suppression,
    WebhookEvent,
)
from syncd.store import person

if TYPE_CHECKING:
    from syncd.context import AppContext

EXPORT_SCHEMA = "syncd-subject-export/1"


@dataclass
class Subject:
    email_key: str
    contact: Contact | None
    events: list[ConsentEvent] = field(default_factory=list)
    lists: list[tuple[ListMembership, InternalList]] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)
    push_states: list[PushState] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    webhooks: list[WebhookEvent] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.contact is None and not self.suppressions and not self.webhooks


def gather(session: Session, keyring: Keyring, email: str) -> Subject:
    """Everything held about the person with this address (InputError for a bad one)."""
    key = parse_address(email).key
    contact = person.contact(session, key)
    subject = Subject(email_key=key, contact=contact)
    addresses = {key}
    if contact is not None:
        subject.events = ledger.history(session, contact.id)
        addresses |= {e.email_at_time for e in subject.events}
        record = person.contact_record(session, contact.id)
        subject.lists, subject.push_states, subject.audit = (
            record.lists, record.push_states, record.audit)
    hmacs = keyring.address_hmacs(sorted(addresses))
    subject.suppressions = person.suppressions(session, hmacs)
    subject.webhooks = person.webhooks(session, hmacs)
    return subject


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def event_dict(event: ConsentEvent) -> dict[str, Any]:
    """One ledger event with everything stored about it, chain links included."""
    return {
        "id": event.id, "purpose": event.purpose, "action": event.action,
        "occurred_at": iso(event.occurred_at), "recorded_at": iso(event.recorded_at),
        "channel": event.source, "email_at_time": event.email_at_time,
        "form_url": event.form_url, "text_version": event.text_version,
        "privacy_notice_version": event.privacy_notice_version, "ip": event.ip,
        "user_agent": event.user_agent,
        "confirmation_token_hash": event.confirmation_token_hash, "reason": event.reason,
        "campaign_id": event.campaign_id,
        "chain": {"seq": event.chain_seq, "prev": event.chain_prev, "hash": event.chain_hash},
    }


def suppression_dict(row: Suppression) -> dict[str, Any]:
    return {"purpose": row.purpose, "reason": row.reason, "since": iso(row.created_at),
            "address_hmac": row.address_hmac}


def webhook_dict(row: WebhookEvent, *, body: bool) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": row.id, "kind": row.kind, "list_id": row.list_id, "fired_at": iso(row.fired_at),
        "received_at": iso(row.received_at), "status": row.status, "source": row.source,
        "last_error": row.last_error}
    if body:
        found["body"] = row.body
    return found


def export_document(subject: Subject, *, now: datetime | None = None) -> dict[str, Any]:
    """The Art. 15/20 document: structured, commonly used (JSON), machine-readable."""
    contact = subject.contact
    return {
        "schema": EXPORT_SCHEMA,
        "generated_at": iso(now or utcnow()),
        "address": subject.email_key,
        "contact": None if contact is None else {
            "id": contact.id, "email": contact.email_display, "email_key": contact.email_key,
            "first_name": contact.first_name, "last_name": contact.last_name,
            "crm_id": contact.crm_id, "attributes": dict(contact.attributes or {}),
            "is_customer": contact.is_customer,
            "undeliverable_since": iso(contact.undeliverable_at),
            "created_at": iso(contact.created_at), "updated_at": iso(contact.updated_at),
            "revision": contact.revision},
        "lists": [{"name": lst.name, "purpose": lst.purpose, "marketing": lst.marketing,
                   "added_at": iso(m.added_at), "source": m.source}
                  for m, lst in subject.lists],
        "consent_events": [event_dict(e) for e in subject.events],
        "suppressions": [suppression_dict(s) for s in subject.suppressions],
        "push_state": [{"audience_id": p.audience_id, "esp_status": p.esp_status,
                        "esp_email": p.esp_email, "settled_revision": p.settled_revision,
                        "parked_reason": p.parked_reason, "retry_after": iso(p.retry_after),
                        "updated_at": iso(p.updated_at)} for p in subject.push_states],
        "audit_log": [{"id": a.id, "at": iso(a.at), "actor": a.actor, "action": a.action,
                       "details": a.details} for a in subject.audit],
        "webhooks": [webhook_dict(w, body=True) for w in subject.webhooks],
    }


def export_for(ctx: AppContext, email: str, *,
               now: datetime | None = None) -> dict[str, Any] | None:
    """The export document for `email`, or None when syncd holds nothing about it."""
    with ctx.sessions() as session:
        subject = gather(session, ctx.keyring, email)
        if subject.empty:
            return None
        return export_document(subject, now=now)
