"""The sync's tables and vocabulary: what Mailchimp last confirmed per contact (push
state), the runs and their outcomes, and the cursors of the runs that read Mailchimp."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from syncd.schema.base import Base, UtcDateTime


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
    # The GDPR permissions Mailchimp last had (JSON, id -> enabled), as pushed or read:
    # only an on -> off move is the member's withdrawal (syncd.sync.permission_moves).
    esp_permissions: Mapped[str | None] = mapped_column(String(2000))


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
