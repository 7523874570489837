"""The consent ledger's rules: what an event records, its dedupe key and row, appending
(one or many, through the one chained append of syncd.store.ledger), and what the
policy and the webhook read back (rule 4, Art. 7(1)).

Each event carries who, purpose, when, how (channel, form), what they were told (text and
privacy notice versions), where from (IP, user agent) and the confirmation proof."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.consent.policy import Action, ConsentFact
from syncd.schema import ChangeMark, ConsentEvent, Contact
from syncd.store import audit
from syncd.store import ledger as stored


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
        """Same content, same key: re-importing a file appends nothing. The SHA-256 of
        json.dumps(content, sort_keys=True), so stored keys still match; joined here from
        the escaped values in key order (a third of the encoder's time: a bulk import
        takes two per line), the encoder itself for a value other than text or None."""
        values = (self.action, self.campaign_id, self.confirmation_token_hash, email_key,
                  self.form_url, self.ip, self.occurred_at.isoformat(),
                  self.privacy_notice_version, self.purpose, self.reason, salt, self.source,
                  self.text_version, self.user_agent)  # in _KEY_ORDER
        try:
            payload = "{" + ", ".join([prefix + ("null" if value is None else _ASCII(value))
                                       for prefix, value in zip(_KEY_PREFIXES, values,
                                                                strict=True)]) + "}"
        except TypeError:  # not text: as the encoder writes it
            payload = _KEY_ENCODER.encode(dict(zip(_KEY_ORDER, values, strict=True)))
        return hashlib.sha256(payload.encode()).hexdigest()


_RECORD_FIELDS = tuple(f.name for f in fields(ConsentRecord))
# The key's content: every field (occurred_at as ISO text), the address and the salt.
_KEY_ORDER = tuple(sorted((*_RECORD_FIELDS, "email", "salt")))
# json.dumps's own escaping (ensure_ascii) and separators, for each key in order.
_ASCII = json.encoder.encode_basestring_ascii
_KEY_PREFIXES = tuple(_ASCII(name) + ": " for name in _KEY_ORDER)
# Built once (json.dumps with options builds one per call); the same output as
# json.dumps(content, sort_keys=True).
_KEY_ENCODER = json.JSONEncoder(sort_keys=True)


class LedgerSubject(Protocol):
    """A contact as a bulk write holds it (syncd.store.contacts.ContactRef): id, address and the
    revision bumps it still owes."""

    id: int
    email_key: str
    bumps: int


# consent_events.reason's width. A reason comes from outside (Mailchimp's `data[reason]`
# has no stated bound): kept to the column, not refused, so that an unsubscribe is never
# lost to its reason's length (on PostgreSQL a longer value failed the purge: parked, I3).
REASON_MAX = 200


def event_row(contact_id: int, email_key: str, record: ConsentRecord,
              dedupe_salt: str = "", *, now: datetime | None = None) -> dict[str, object]:
    """The consent_events row for `record`: what every append inserts (the reason kept to
    REASON_MAX characters)."""
    return {
        "contact_id": contact_id, "purpose": record.purpose, "action": str(record.action),
        "occurred_at": record.occurred_at, "recorded_at": now or utcnow(),
        "source": record.source, "email_at_time": email_key, "form_url": record.form_url,
        "text_version": record.text_version,
        "privacy_notice_version": record.privacy_notice_version, "ip": record.ip,
        "user_agent": record.user_agent,
        "confirmation_token_hash": record.confirmation_token_hash,
        "reason": None if record.reason is None else record.reason[:REASON_MAX],
        "campaign_id": record.campaign_id,
        "dedupe_key": record.dedupe_key(email_key, dedupe_salt),
    }


def audit_row(actor: str, contact_id: int, record: ConsentRecord,
              at: datetime | None = None, *,
              shared: dict[tuple[str, str, str], dict[str, Any]] | None = None
              ) -> audit.AuditRow:
    """The audit entry of an appended event. `shared`: the details of a bulk write's
    entries, one object per content (serialised once: syncd.store.dialect.insert_rows)."""
    content = (record.purpose, record.source, record.occurred_at.isoformat())
    details = None if shared is None else shared.get(content)
    if details is None:
        details = {"purpose": content[0], "source": content[1], "occurred_at": content[2]}
        if shared is not None:
            shared[content] = details
    return audit.AuditRow(actor, f"consent_{record.action}", contact_id, details, at)


def append(session: Session, contact: Contact, record: ConsentRecord, *, actor: str,
           dedupe_salt: str = "") -> bool:
    """Append one event unless the same one is there already. True when appended; the
    contact's revision is bumped so the next sync looks at it again."""
    row = event_row(contact.id, contact.email_key, record, dedupe_salt)
    if not stored.append(session, [row]):
        return False
    contact.revision += 1
    contact.change_mark = ChangeMark()  # SQL, evaluated at the flush
    contact.updated_at = utcnow()
    audit.append(session, [audit_row(actor, contact.id, record)])
    return True


def append_many(session: Session, items: Sequence[tuple[LedgerSubject, ConsentRecord]], *,
                actor: str, dedupe_salt: str = "") -> int:
    """`append` for many events in a few multi-row statements (bulk import): the same
    dedupe and an audit entry per appended event; each appended event adds a pending
    bump to its contact (written by `store.apply_revision_bumps`). Returns how many were
    appended."""
    now = utcnow()
    rows = [event_row(contact.id, contact.email_key, record, dedupe_salt, now=now)
            for contact, record in items]
    inserted = stored.append(session, rows)
    audit_rows = []
    shared: dict[tuple[str, str, str], dict[str, Any]] = {}
    for (contact, record), row in zip(items, rows, strict=True):
        if row["dedupe_key"] in inserted:
            inserted.discard(str(row["dedupe_key"]))  # the same event twice in `items`: once
            contact.bumps += 1
            audit_rows.append(audit_row(actor, contact.id, record, now, shared=shared))
    audit.append(session, audit_rows)
    return len(audit_rows)


def fact(event: ConsentEvent | stored.StoredEvent) -> ConsentFact:
    """What the pure policy needs of a stored event."""
    return ConsentFact(purpose=event.purpose, action=Action(event.action),
                       occurred_at=event.occurred_at, source=event.source, ip=event.ip,
                       text_version=event.text_version)


def facts_by_contact(session: Session, contact_ids: Iterable[int]) -> dict[int, list[ConsentFact]]:
    return {contact_id: [fact(e) for e in events] for contact_id, events
            in stored.events_by_contact(session, contact_ids).items()}


def history(session: Session, contact_id: int) -> list[ConsentEvent]:
    return stored.history(session, contact_id)


def same_withdrawal_recorded(recent: Iterable[tuple[str, str, datetime]], *, purpose: str,
                             moment: datetime, window: timedelta) -> bool:
    """A withdrawal of `purpose` within `window` of `moment` with no confirmation in
    between, among `recent` (purpose, action, occurred_at): a webhook and the
    reconciliation pull of one unsubscribe must not both write one."""
    mine = [(action, at) for p, action, at in recent if p == purpose]
    confirmed = [at for action, at in mine if action == Action.CONFIRMED]
    for action, other in mine:
        if action != Action.WITHDRAWN or not moment - window <= other <= moment + window:
            continue
        low, high = sorted((other, moment))
        if not any(low < at <= high for at in confirmed):
            return True
    return False
