"""The sign-up's tables and vocabulary: confirmation links and the durable mail outbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from syncd.schema.base import Base, UtcDateTime


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
