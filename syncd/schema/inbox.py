"""The webhook inbox's table and vocabulary: every Mailchimp event stored once, its
status, kind and source."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from syncd.schema.base import Base, UtcDateTime


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
