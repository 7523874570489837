"""The retention rules' reads and deletes (Art. 5(1)(e)): old webhook bodies, run history
and audit entries, and the consent lifecycle's candidates (syncd.consent.lifecycle)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, exists, func, select, update
from sqlalchemy.orm import Session

from syncd.clock import as_utc, parse_timestamp
from syncd.schema import (
    SETTLED_STATUSES,
    AuditEntry,
    ConsentAction,
    ConsentEvent,
    Contact,
    ListMembership,
    PushState,
    SyncRun,
    WebhookEvent,
)

PAGE = 500
_GIVEN, _CONFIRMED = ConsentAction.GIVEN, ConsentAction.CONFIRMED
_WITHDRAWN, _SOFT = ConsentAction.WITHDRAWN, ConsentAction.SOFT_OPT_IN


@dataclass(frozen=True)
class Candidate:
    """A contact a lifecycle rule looks at."""

    id: int
    email_key: str
    undeliverable_at: datetime | None


@dataclass(frozen=True)
class ConfirmedAt:
    contact_id: int
    purpose: str
    confirmed_at: datetime


def _count(session: Session, query: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _old_bodies(cutoff: datetime) -> Any:
    return select(WebhookEvent.id).where(WebhookEvent.received_at < cutoff,
                                         WebhookEvent.body.is_not(None))


def count_unsettled_bodies(session: Session, cutoff: datetime) -> int:
    """Bodies older than `cutoff` whose events are not applied yet (kept)."""
    return _count(session, _old_bodies(cutoff).where(
        WebhookEvent.status.not_in(SETTLED_STATUSES)))


def null_settled_bodies(session: Session, cutoff: datetime, *, dry_run: bool) -> int:
    """Null the raw bodies of settled events received before `cutoff` (or count them)."""
    settled = _old_bodies(cutoff).where(WebhookEvent.status.in_(SETTLED_STATUSES))
    if dry_run:
        return _count(session, settled)
    return _rowcount(session.execute(
        update(WebhookEvent).where(WebhookEvent.id.in_(settled)).values(body=None)
        .execution_options(synchronize_session=False)))


def _delete_ids(session: Session, model: Any, old: Any, *, dry_run: bool) -> int:
    if dry_run:
        return _count(session, old)
    return _rowcount(session.execute(delete(model).where(model.id.in_(old))
                                     .execution_options(synchronize_session=False)))


def delete_runs(session: Session, cutoff: datetime, *, dry_run: bool) -> int:
    """Delete run records started before `cutoff` (or count them)."""
    return _delete_ids(session, SyncRun, select(SyncRun.id).where(SyncRun.started_at < cutoff),
                       dry_run=dry_run)


def delete_audit(session: Session, cutoff: datetime, *, dry_run: bool) -> int:
    """Delete audit entries written before `cutoff` (or count them)."""
    return _delete_ids(session, AuditEntry, select(AuditEntry.id).where(AuditEntry.at < cutoff),
                       dry_run=dry_run)


def _pages(session: Session, query: Any) -> Iterator[list[Candidate]]:
    after = 0
    while True:
        page = [Candidate(*row) for row in session.execute(
            query.where(Contact.id > after).order_by(Contact.id).limit(PAGE))]
        if not page:
            return
        yield page
        after = page[-1].id


_CANDIDATE = select(Contact.id, Contact.email_key, Contact.undeliverable_at)


def unconfirmed_signups(session: Session, cutoff: datetime) -> Iterator[list[Candidate]]:
    """Pages of contacts with a `given` consent, never confirmed, no soft opt-in, not a
    customer, created and with no event at all since `cutoff`."""
    per_contact = (select(ConsentEvent.contact_id).group_by(ConsentEvent.contact_id).having(
        func.sum(case((ConsentEvent.action == _GIVEN, 1), else_=0)) > 0,
        func.sum(case((ConsentEvent.action.in_([_CONFIRMED, _SOFT]), 1), else_=0)) == 0,
        func.max(ConsentEvent.occurred_at) < cutoff,
        func.max(ConsentEvent.recorded_at) < cutoff))
    return _pages(session, _CANDIDATE.where(Contact.id.in_(per_contact),
                                            Contact.is_customer.is_(False),
                                            Contact.created_at < cutoff))


def quiet_unlisted(session: Session, cutoff: datetime) -> Iterator[list[Candidate]]:
    """Pages of contacts that are no customer, on no list, created and with no consent
    event since `cutoff`."""
    recent = exists().where(ConsentEvent.contact_id == Contact.id,
                            (ConsentEvent.occurred_at >= cutoff)
                            | (ConsentEvent.recorded_at >= cutoff))
    listed = exists().where(ListMembership.contact_id == Contact.id)
    return _pages(session, _CANDIDATE.where(Contact.is_customer.is_(False),
                                            Contact.created_at < cutoff, ~recent, ~listed))


def with_esp_status(session: Session, contact_ids: list[int], statuses: Any) -> set[int]:
    """Those of these contacts whose member has one of these statuses at the ESP."""
    return set(session.scalars(select(PushState.contact_id).where(
        PushState.contact_id.in_(contact_ids), PushState.esp_status.in_(statuses))))


def confirmed_before(session: Session, cutoff: datetime, listed: int
                     ) -> tuple[dict[str, int], list[ConfirmedAt]]:
    """Consents still standing whose newest confirmation is before `cutoff` (no
    withdrawal after it): the count by purpose, and the `listed` oldest."""
    confirmed = func.max(case((ConsentEvent.action == _CONFIRMED, ConsentEvent.occurred_at)))
    withdrawn = func.max(case((ConsentEvent.action == _WITHDRAWN, ConsentEvent.occurred_at)))
    pairs = (select(ConsentEvent.contact_id, ConsentEvent.purpose, confirmed.label("at"))
             .group_by(ConsentEvent.contact_id, ConsentEvent.purpose)
             .having(confirmed < cutoff, (withdrawn.is_(None)) | (withdrawn < confirmed))
             .subquery())
    by_purpose = {purpose: int(count) for purpose, count in session.execute(
        select(pairs.c.purpose, func.count()).group_by(pairs.c.purpose))}
    rows = session.execute(select(pairs.c.contact_id, pairs.c.purpose, pairs.c.at)
                           .order_by(pairs.c.at, pairs.c.contact_id).limit(listed))
    # SQLite gives MAX() of a datetime column back as text.
    return by_purpose, [ConfirmedAt(int(c), p, as_utc(at) if isinstance(at, datetime)
                                    else parse_timestamp(str(at))) for c, p, at in rows]
