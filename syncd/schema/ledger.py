"""The consent ledger's tables and vocabulary: consent events (append-only, hash-chained),
the chain's head, tombstones of erased events, the actions and the channels."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from syncd.schema.base import Base, UtcDateTime


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
    # A GDPR marketing permission the member switched off at Mailchimp, read by the
    # reconciliation or the audience pull (syncd.sync.permission_moves).
    ESP_PERMISSION = "esp_permission"


# The channels through which Mailchimp reported an event (webhook or reconciliation pull).
ESP_CHANNELS = frozenset({LedgerChannel.ESP_WEBHOOK, LedgerChannel.RECONCILIATION,
                          LedgerChannel.ESP_PERMISSION})


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
