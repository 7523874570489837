"""The read-only queries of the service's probes, gauges and status page (/readyz,
/metrics, /status) and of the demo's reports: counts, ages and ids, never an address
(the demo's reports name its sample people by address, on the operator's own screen)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from syncd.schema import (
    ConsentEvent,
    Contact,
    LedgerTombstone,
    PushState,
    SyncRun,
    WebhookEvent,
)


@dataclass(frozen=True)
class Run:
    id: int
    kind: str
    audience_id: str | None
    outcome: str
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class RunTarget:
    """The recent runs of one kind for one audience, newest first."""

    kind: str
    audience_id: str | None
    runs: tuple[Run, ...]


@dataclass(frozen=True)
class ParkedContact:
    contact_id: int
    audience_id: str
    reason: str | None
    since: datetime | None


@dataclass(frozen=True)
class ParkedEvent:
    id: int
    kind: str
    received_at: datetime | None
    attempts: int
    last_error: str | None


def _run(row: Any) -> Run:
    return Run(row.id, row.kind, row.audience_id, row.outcome, row.started_at,
               row.finished_at, dict(row.counts or {}), row.error)


def ping(engine: Engine) -> None:
    """The database answers (raises if not)."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


# -- runs -------------------------------------------------------------------------------


def last_success_by_kind(session: Session, outcomes: Sequence[str]) -> dict[str, datetime]:
    """When a run of each kind last finished with one of `outcomes` (any replica's)."""
    rows = session.execute(select(SyncRun.kind, func.max(SyncRun.finished_at))
                           .where(SyncRun.outcome.in_(outcomes)).group_by(SyncRun.kind))
    return {str(kind): finished for kind, finished in rows if finished is not None}


def recent_runs(session: Session, per_target: int) -> list[RunTarget]:
    """Per kind and audience (sorted), the last `per_target` runs."""
    targets = session.execute(select(SyncRun.kind, SyncRun.audience_id).distinct()
                              .order_by(SyncRun.kind, SyncRun.audience_id)).all()
    found = []
    for kind, audience in targets:
        rows = session.execute(
            select(SyncRun).where(SyncRun.kind == kind, SyncRun.audience_id == audience
                                  if audience is not None else SyncRun.audience_id.is_(None))
            .order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(per_target))
        found.append(RunTarget(kind, audience, tuple(_run(row) for row in rows.scalars())))
    return found


def last_run(session: Session, kind: str) -> Run | None:
    """The newest run of `kind`, finished or not."""
    row = session.scalars(select(SyncRun).where(SyncRun.kind == kind)
                          .order_by(SyncRun.id.desc()).limit(1)).first()
    return None if row is None else _run(row)


# -- push state -------------------------------------------------------------------------


def parked_contacts(session: Session, listed: int) -> tuple[int, list[ParkedContact]]:
    """How many contacts are parked in all, and the `listed` most recently parked."""
    parked = PushState.parked_reason.is_not(None)
    total = session.scalar(select(func.count()).select_from(PushState).where(parked)) or 0
    rows = session.execute(select(PushState.contact_id, PushState.audience_id,
                                  PushState.parked_reason, PushState.updated_at)
                           .where(parked).order_by(PushState.updated_at.desc())
                           .limit(listed)).all()
    return int(total), [ParkedContact(*row) for row in rows]


# -- inbox ------------------------------------------------------------------------------


def inbox_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(WebhookEvent.status, func.count())
                           .group_by(WebhookEvent.status))
    return {str(status): int(count) for status, count in rows}


def inbox_count(session: Session, status: str) -> int:
    return int(session.scalar(select(func.count()).select_from(WebhookEvent).where(
        WebhookEvent.status == status)) or 0)


def oldest_received(session: Session, statuses: Sequence[str]) -> datetime | None:
    return session.scalar(select(func.min(WebhookEvent.received_at))
                          .where(WebhookEvent.status.in_(statuses)))


def last_received(session: Session, source: str) -> datetime | None:
    return session.scalar(select(func.max(WebhookEvent.received_at))
                          .where(WebhookEvent.source == source))


def events_in(session: Session, status: str, listed: int) -> list[ParkedEvent]:
    """The `listed` oldest inbox events in `status`."""
    rows = session.execute(select(WebhookEvent.id, WebhookEvent.kind, WebhookEvent.received_at,
                                  WebhookEvent.attempts, WebhookEvent.last_error)
                           .where(WebhookEvent.status == status)
                           .order_by(WebhookEvent.received_at).limit(listed)).all()
    return [ParkedEvent(*row) for row in rows]


def latest_event_status(session: Session, address_hmac: str, kind: str) -> str | None:
    """The status of the newest inbox event of `kind` for the address."""
    return session.scalar(select(WebhookEvent.status)
                          .where(WebhookEvent.address_hmac == address_hmac,
                                 WebhookEvent.kind == kind)
                          .order_by(WebhookEvent.id.desc()).limit(1))


# -- ledger and contacts (for the demo's reports) -----------------------------------------


def tombstone_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(LedgerTombstone)) or 0)


def consent_events_by_address(session: Session) -> dict[str, int]:
    """How many ledger events each contact has, by its address key (the demo's sample)."""
    rows = session.execute(select(Contact.email_key, func.count(ConsentEvent.id))
                           .join(ConsentEvent, ConsentEvent.contact_id == Contact.id)
                           .group_by(Contact.email_key))
    return {str(email): int(count) for email, count in rows}


def parked_by_address(session: Session) -> dict[str, str]:
    """Why each parked contact is parked, by its address key (the demo's sample)."""
    rows = session.execute(select(Contact.email_key, PushState.parked_reason)
                           .join(PushState, PushState.contact_id == Contact.id)
                           .where(PushState.parked_reason.is_not(None)))
    return {str(email): str(reason or "") for email, reason in rows}


def consent_actions_of(session: Session, email_key: str) -> list[str]:
    """A contact's ledger actions, oldest first, by its address key (the demo's sample)."""
    return [str(action) for action in session.scalars(
        select(ConsentEvent.action).join(Contact, Contact.id == ConsentEvent.contact_id)
        .where(Contact.email_key == email_key).order_by(ConsentEvent.id))]
