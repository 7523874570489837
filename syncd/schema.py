"""The database schema (SQLAlchemy 2.x). Alembic migrations in syncd/migrations create it.

Every table keeps the least data that serves its purpose (Art. 5(1)(c) GDPR): addresses
live only in `contacts`; suppression and the inbox index carry keyed hashes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from syncd.clock import as_utc

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both databases (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Contact(Base):
    __tablename__ = "contacts"
    # The sync's incremental read walks (id, revision) from the index alone.
    __table_args__ = (Index("ix_contacts_id_revision", "id", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Identity: trimmed, lower-cased. Mailchimp's subscriber hash is MD5 of the same.
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    email_display: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    crm_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # An existing customer: soft opt-in for similar products, never newsletter consent.
    is_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set by a hard bounce (`cleaned`); cleared when the address changes.
    undeliverable_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Bumped on every change that could change what is pushed: the sync reads only
    # contacts whose revision is newer than the one last confirmed by the ESP.
    revision: Mapped[int] = mapped_column(BigInteger, default=1)


class InternalList(Base):
    __tablename__ = "internal_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    purpose: Mapped[str] = mapped_column(String(64))
    marketing: Mapped[bool] = mapped_column(Boolean, default=True)


class ListMembership(Base):
    __tablename__ = "list_memberships"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("internal_lists.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(64))


class ConsentAction(StrEnum):
    """consent_events.action (syncd.consent.policy imports it as its Action)."""

    GIVEN = "given"
    CONFIRMED = "confirmed"
    WITHDRAWN = "withdrawn"
    # A record of the soft opt-in legal basis (existing customer); never consent.
    SOFT_OPT_IN = "soft_opt_in"


class LedgerChannel(StrEnum):
    """consent_events.source: the channels syncd itself records consent through (an
    import carries the source its file names)."""

    WEB_FORM = "web_form"
    API = "api"
    CONFIRMATION_LINK = "confirmation_link"
    PREFERENCE_PAGE = "preference_page"
    ESP_WEBHOOK = "esp_webhook"
    RECONCILIATION = "reconciliation"


# The channels through which Mailchimp reported an event (webhook or reconciliation pull).
ESP_CHANNELS = frozenset({LedgerChannel.ESP_WEBHOOK, LedgerChannel.RECONCILIATION})


class ConsentEvent(Base):
    """Append-only (a database trigger refuses UPDATE, and DELETE without a tombstone):
    withdrawal is a new event."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_contact_purpose", "contact_id", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(64))
    # ConsentAction
    action: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # LedgerChannel, or an import's own source
    source: Mapped[str] = mapped_column(String(64))
    email_at_time: Mapped[str] = mapped_column(String(320))
    form_url: Mapped[str | None] = mapped_column(String(2000))
    text_version: Mapped[str | None] = mapped_column(String(200))
    privacy_notice_version: Mapped[str | None] = mapped_column(String(200))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(1000))
    confirmation_token_hash: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(200))
    campaign_id: Mapped[str | None] = mapped_column(String(64))
    # Hash of the event's content: re-importing the same event changes nothing.
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    # The hash chain (syncd.store.ledger): place in the ledger, the link of the event
    # before it and this event's own link over its content.
    chain_seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    chain_prev: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64))


class LedgerChainHead(Base):
    """The newest link of the consent ledger's hash chain (one row, id 1). Locked by
    every append on PostgreSQL so two writers never fork the chain."""

    __tablename__ = "ledger_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LedgerTombstone(Base):
    """What stays of a consent event removed by erasure or retention: its place and its
    links, no content and no contact id, so the chain still verifies (Art. 17)."""

    __tablename__ = "ledger_tombstones"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(Integer)
    event_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    removed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # erasure | unconfirmed_signup | no_purpose_left
    reason: Mapped[str] = mapped_column(String(64))


class Suppression(Base):
    """Keyed HMAC of the normalised address: survives erasure (rule 8, I10).
    A keyed hash is still personal data (Dutch AP): kept only for this purpose."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("address_hmac", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_hmac: Mapped[str] = mapped_column(String(64))
    # A purpose, or "*" for every marketing purpose (abuse complaint, erasure).
    purpose: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """Every change to consent, lists and suppression. No addresses: contact id only."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[int | None] = mapped_column(Integer, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PushState(Base):
    """What the ESP last confirmed for a contact in an audience (checkpoint, I8)."""

    __tablename__ = "push_state"
    __table_args__ = (Index("ix_push_state_audience_id_esp_status", "audience_id",
                            "esp_status"),)

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    audience_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Contact revision whose outcome is settled (pushed, skipped or parked).
    settled_revision: Mapped[int] = mapped_column(BigInteger)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    # Status we know the member has at the ESP; None: never added by syncd.
    esp_status: Mapped[str | None] = mapped_column(String(32))
    # The address the member has at the ESP (its MD5 is the member key).
    esp_email: Mapped[str | None] = mapped_column(String(320))
    parked_reason: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Sent, not yet confirmed (written before the ESP call, cleared by the checkpoint):
    # after a crash an "already a member" answer is recognised as syncd's own add.
    attempt_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # Mailchimp refused for now ("signed up to a lot of lists very recently").
    retry_after: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Mailchimp's own record, as last read (audience pull, reconciliation) or written:
    # its `last_changed` (a status is compared against the one known at that moment, so an
    # edit is never taken for a new unsubscribe) and its opt-in proof.
    esp_last_changed: Mapped[datetime | None] = mapped_column(UtcDateTime)
    esp_opt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    esp_opt_ip: Mapped[str | None] = mapped_column(String(64))
    # pushed: syncd added the member; pulled: it was in the audience before syncd.
    esp_origin: Mapped[str | None] = mapped_column(String(16))
    # When syncd itself asked Mailchimp for `pending` (an add or a re-consent): only a
    # `subscribe` after that moment can be the person's confirmation click.
    pending_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PushOutcome(StrEnum):
    """What became of one planned change at the ESP (a sync run's counts)."""

    ADDED = "added"
    RECONSENT = "reconsent"
    UPDATED = "updated"
    UNSUBSCRIBED = "unsubscribed"
    ADOPTED = "adopted"
    UNCHANGED = "unchanged"
    FOREIGN = "foreign"
    MISSING = "missing"
    PARKED = "parked"
    FAILED = "failed"
    HELD = "held"


class MemberOrigin(StrEnum):
    """push_state.esp_origin: who put the member in the audience."""

    PUSHED = "pushed"  # syncd added it
    PULLED = "pulled"  # it was there before syncd (audience pull, reconciliation)


class AddressHistory(Base):
    """Every address a contact had before its current one, as keyed hashes: a stale
    export of an old address is the same person, blocked by the same suppression (I12)."""

    __tablename__ = "address_history"
    __table_args__ = (UniqueConstraint("contact_id", "address_hmac"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"),
                                            index=True)
    address_hmac: Mapped[str] = mapped_column(String(64), index=True)
    replaced_at: Mapped[datetime] = mapped_column(UtcDateTime)


class InboxStatus(StrEnum):
    """webhook_events.status: what became of a stored event."""

    APPLIED = "applied"
    IGNORED = "ignored"  # stored, nothing to apply (another audience, a campaign ...)
    FAILED = "failed"  # applying raised: retried by `retry_pending`
    PARKED = "parked"  # never appliable as it is, or out of attempts: for a person


# Settled: applying is done, the body is no longer needed for it (retention may null it).
SETTLED_STATUSES = (InboxStatus.APPLIED, InboxStatus.IGNORED)
# Not applied yet: an unsubscribe or cleaned in these blocks pushes for its address.
UNAPPLIED_STATUSES = (InboxStatus.FAILED, InboxStatus.PARKED)


class EventKind(StrEnum):
    """webhook_events.kind: the `type` of a Mailchimp audience event."""

    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    PROFILE = "profile"
    UPEMAIL = "upemail"
    CLEANED = "cleaned"
    CAMPAIGN = "campaign"
    UNKNOWN = "unknown"


# Kinds that, while not applied yet, block pushes for their address.
BLOCKING_KINDS = (EventKind.UNSUBSCRIBE, EventKind.CLEANED)


class InboxSource(StrEnum):
    """webhook_events.source: who delivered the event."""

    WEBHOOK = "webhook"
    RECONCILIATION = "reconciliation"  # built by the reconciliation pull


class WebhookEvent(Base):
    """The inbox: every delivery stored before it is answered (I4)."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # EventKind
    list_id: Mapped[str | None] = mapped_column(String(64))
    fired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    address_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    # InboxStatus
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # Raw body for re-application and audit; pruned after retention_webhook_body_days.
    body: Mapped[str | None] = mapped_column(Text)
    # InboxSource
    source: Mapped[str] = mapped_column(String(32), default=InboxSource.WEBHOOK.value)


class SyncRun(Base):
    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    audience_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # a RunOutcome
    outcome: Mapped[str] = mapped_column(String(16))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(String(1000))


class RunKind(StrEnum):
    """sync_runs.kind."""

    SYNC = "sync"
    RECONCILE = "reconcile"
    AUDIENCE_PULL = "audience_pull"
    AUDIENCE_AUDIT = "audience_audit"


class RunOutcome(StrEnum):
    """sync_runs.outcome (and the reports' `outcome`)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUSED = "refused"
    INTERRUPTED = "interrupted"
    DRY_RUN = "dry_run"  # reported, never recorded
    FINDINGS = "findings"  # an audience audit that found members to look at


class Cursor(Base):
    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class InstallationValue(Base):
    """Values generated once per installation (e.g. the pseudonym key if none is set)."""

    __tablename__ = "installation"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))


class SignupToken(Base):
    """A confirmation link's token: only its SHA-256 is kept (the raw token exists only
    in the mail). Single use: `used_at` is set by the one POST that confirms."""

    __tablename__ = "signup_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"),
                                            index=True)
    purposes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OutboxMail(Base):
    """A mail to send, written in the transaction that decided it: the HTTP answer never
    waits for SMTP, and nothing is lost across a restart. No address and no body: both
    are made at send time from the contact (an erased contact's mail goes with it)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # a MailKind
    kind: Mapped[str] = mapped_column(String(32))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"),
                                            index=True)
    # Keyed hash of the address: "one confirmation mail per address and purpose".
    address_hmac: Mapped[str] = mapped_column(String(64), index=True)
    purposes: Mapped[list[str]] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(8))
    token_id: Mapped[int | None] = mapped_column(
        ForeignKey("signup_tokens.id", ondelete="CASCADE"))
    # Input of the keyed derivation of the raw token; cleared once the mail is sent.
    token_nonce: Mapped[str | None] = mapped_column(String(64))
    # a MailStatus
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))


# -- the sign-up vocabularies (values as stored in signup_tokens and outbox) ---------


class MailKind(StrEnum):
    """What an outbox mail is (outbox.kind)."""

    CONFIRMATION = "confirmation"
    WITHDRAWAL = "withdrawal"
    PREFERENCES_LINK = "preferences_link"


class MailStatus(StrEnum):
    """Where an outbox mail is (outbox.status): queued -> sending -> sent, or failed."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class LinkState(StrEnum):
    """What a confirmation link is worth now (read from signup_tokens, not stored)."""

    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"
    UNKNOWN = "unknown"
