"""The webhook inbox table (webhook_events): storing an event once, its status, the reads
that follow renames and re-apply earlier events, what blocks a push, and the counts the
status page shows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select, update
from sqlalchemy.orm import Session

from syncd.schema import (
    BLOCKING_KINDS,
    SETTLED_STATUSES,
    UNAPPLIED_STATUSES,
    EventKind,
    InboxSource,
    InboxStatus,
    WebhookEvent,
)
from syncd.store.dialect import among, insert_ignoring_duplicates

_TABLE = cast(Table, WebhookEvent.__table__)


@dataclass(frozen=True)
class StoredBody:
    """A stored event's raw body, with what it was stored under."""

    id: int
    dedupe_key: str
    kind: str
    source: str
    status: str
    attempts: int
    fired_at: datetime | None
    body: str | None


_BODY_COLUMNS = (WebhookEvent.id, WebhookEvent.dedupe_key, WebhookEvent.kind,
                 WebhookEvent.source, WebhookEvent.status, WebhookEvent.attempts,
                 WebhookEvent.fired_at, WebhookEvent.body)


def insert(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Store events; the ids of those inserted (an event whose dedupe key is stored
    already is skipped: a concurrent duplicate waits for the first transaction, then
    inserts nothing)."""
    return insert_ignoring_duplicates(session, _TABLE, rows, _TABLE.c.id)


def set_status(session: Session, event_ids: Iterable[int], status: InboxStatus, *,
               error: str | None = None, attempted: bool = False) -> None:
    """Record what became of these events (`attempted`: one more attempt counted)."""
    values: dict[str, Any] = {"status": str(status), "last_error": error}
    if attempted:
        values["attempts"] = WebhookEvent.attempts + 1
    session.connection().execute(update(WebhookEvent).where(
        WebhookEvent.id.in_(sorted(set(event_ids)))).values(**values))


def set_status_by_key(session: Session, dedupe_keys: Iterable[str], status: InboxStatus
                      ) -> None:
    session.connection().execute(update(WebhookEvent).where(
        WebhookEvent.dedupe_key.in_(sorted(set(dedupe_keys))))
        .values(status=str(status), last_error=None))


def count(session: Session, status: InboxStatus) -> int:
    return int(session.scalar(select(func.count()).select_from(WebhookEvent)
                              .where(WebhookEvent.status == str(status))) or 0)


def ids_with_status(session: Session, status: InboxStatus, limit: int) -> list[int]:
    """The oldest events with this status."""
    return list(session.scalars(select(WebhookEvent.id).where(WebhookEvent.status == status)
                                .order_by(WebhookEvent.id).limit(limit)))


def take(session: Session, event_id: int, *, lock: bool) -> StoredBody | None:
    """One event (`lock`: locked for this transaction; None if another replica holds it)."""
    query = select(*_BODY_COLUMNS).where(WebhookEvent.id == event_id)
    if lock:
        query = query.with_for_update(skip_locked=True)
    found = session.execute(query).first()
    return None if found is None else StoredBody(*found)


def settled_bodies(session: Session, address_hmac: str, kinds: Iterable[str], *,
                   fired_after: datetime | None = None, newest_first: bool = False,
                   limit: int | None = None) -> list[StoredBody]:
    """Settled events of these kinds for this address (keyed hash) that still have their
    body, in the order they were fired (`newest_first`: the other way)."""
    query = select(*_BODY_COLUMNS).where(
        WebhookEvent.address_hmac == address_hmac,
        WebhookEvent.kind.in_(sorted(kinds)),
        WebhookEvent.status.in_(SETTLED_STATUSES), WebhookEvent.body.is_not(None))
    if fired_after is not None:
        query = query.where(WebhookEvent.fired_at > fired_after)
    order = WebhookEvent.fired_at.desc() if newest_first else WebhookEvent.fired_at
    query = query.order_by(order, WebhookEvent.id)
    if limit is not None:
        query = query.limit(limit)
    return [StoredBody(*row) for row in session.execute(query)]


def applied_after(session: Session, kind: str, address_hmacs: Iterable[str],
                  fired_after: datetime, *, other_than: str) -> bool:
    """Whether an applied event of this kind for one of these addresses was fired later
    (besides the one with dedupe key `other_than`)."""
    return session.scalar(select(WebhookEvent.id).where(
        WebhookEvent.kind == kind, WebhookEvent.status == InboxStatus.APPLIED,
        WebhookEvent.address_hmac.in_(sorted(address_hmacs)),
        WebhookEvent.fired_at > fired_after,
        WebhookEvent.dedupe_key != other_than).limit(1)) is not None


def blocked_address_hmacs(conn: Connection, address_hmacs: Iterable[str]) -> set[str]:
    """The addresses (keyed hashes) with an unsubscribe or cleaned event not applied yet
    (failed, or parked for a person): their pushes wait (I3)."""
    keys = sorted(set(address_hmacs))
    if not keys:
        return set()
    return set(conn.scalars(select(WebhookEvent.address_hmac).where(
        among(conn.dialect.name, WebhookEvent.address_hmac, keys),
        WebhookEvent.kind.in_(BLOCKING_KINDS),
        WebhookEvent.status.in_(UNAPPLIED_STATUSES))))


def forget_bodies(session: Session, address_hmacs: Iterable[str]) -> None:
    """Null the raw bodies of events for these addresses (erasure: they hold the address);
    the rows stay, so a replay is still a duplicate."""
    session.execute(update(WebhookEvent)
                    .where(WebhookEvent.address_hmac.in_(sorted(set(address_hmacs))))
                    .values(body=None).execution_options(synchronize_session=False))


@dataclass(frozen=True)
class ListedEvent:
    """An event as the status page lists it (no body, no address)."""

    id: int
    kind: str
    received_at: datetime
    attempts: int
    last_error: str | None


def count_by_status(session: Session) -> dict[str, int]:
    return {status: int(n) for status, n in session.execute(
        select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status))}


def oldest_received(session: Session, statuses: Iterable[InboxStatus]) -> datetime | None:
    """When the oldest event with one of these statuses was received."""
    return session.scalar(select(func.min(WebhookEvent.received_at))
                          .where(WebhookEvent.status.in_(sorted(statuses))))


def listed(session: Session, status: InboxStatus, limit: int) -> list[ListedEvent]:
    """The oldest events with this status."""
    return [ListedEvent(*row) for row in session.execute(
        select(WebhookEvent.id, WebhookEvent.kind, WebhookEvent.received_at,
               WebhookEvent.attempts, WebhookEvent.last_error)
        .where(WebhookEvent.status == status).order_by(WebhookEvent.received_at).limit(limit))]


def last_received(session: Session, source: InboxSource) -> datetime | None:
    return session.scalar(select(func.max(WebhookEvent.received_at))
                          .where(WebhookEvent.source == source))


def latest_status(session: Session, address_hmac: str, kind: EventKind) -> str | None:
    """The status of the newest event of this kind for this address (keyed hash)."""
    return session.scalar(select(WebhookEvent.status)
                          .where(WebhookEvent.address_hmac == address_hmac,
                                 WebhookEvent.kind == kind)
                          .order_by(WebhookEvent.id.desc()).limit(1))
