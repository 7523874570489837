"""The webhook inbox: store, dedupe, apply, and keep what could not be applied (I4, I5).

Dedupe key. Mailchimp sends no event id and no trustworthy timestamp for replay checks
(docs/mailchimp.md section 1), and a retried delivery may order its keys differently, so the
key is SHA-256 over the canonical JSON of the PARSED fields that identify an event:
type, fired_at, list_id, the address(es), reason, action and campaign_id (plus the merge
fields for `profile`, the whole parsed body for unknown types or a missing fired_at, and
the source for events the reconciliation pull builds). A retry or replay of the same
event hits the same key and changes nothing; a later real unsubscribe of the same person
has another fired_at and is a new event. Concurrent duplicates are safe because the
insert is `INSERT .. ON CONFLICT DO NOTHING` on the unique key: PostgreSQL makes the
second insert wait for the first transaction and then skip; SQLite serialises writers
(BEGIN IMMEDIATE).

Durability. `receive` stores the event and applies it in ONE transaction; the caller
answers 2xx only after it commits. If applying fails (a bug, a poison event), that
transaction rolls back and the raw event is stored in a transaction of its own with
status `failed` (or `parked` when it can never apply) and the error WITHOUT any address;
the delivery is then answered 2xx, because from that moment retrying is our job
(`retry_pending`), not Mailchimp's. A database that is busy rather than broken (a lock
or statement timeout, SQLite's "database is locked", a lost connection, the delivery's
deadline running out) is NOT such a failure: nothing is stored and the delivery is
refused (503), so that Mailchimp retries and the purge still happens before a 2xx (I3).
Only when even the failed-event store fails is the delivery refused too.

Deadline. A webhook's `receive` gets a monotonic deadline: every transaction is then a
`deadline_transaction` (bounded lock waits, no commit after the deadline), so that the
answer always comes before Mailchimp gives up at 10 s.

A failed or parked `unsubscribe`/`cleaned` blocks pushes for its address until applied:
the sync's source query leaves them out (syncd.store.inbox.blocked_address_hmacs).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from syncd import logs
from syncd.clock import as_utc, utcnow
from syncd.config import Settings
from syncd.db import deadline_transaction, is_transient, transaction
from syncd.keys import Keyring
from syncd.metrics import INBOX_PARKED
from syncd.schema import InboxSource, InboxStatus, LedgerChannel
from syncd.store import inbox as stored
from syncd.webhooks import apply as effects
from syncd.webhooks.mailchimp_form import EventKind, InboundEvent, parse_body

SOURCE_WEBHOOK = InboxSource.WEBHOOK
SOURCE_RECONCILIATION = InboxSource.RECONCILIATION
FAILED = InboxStatus.FAILED
PARKED = InboxStatus.PARKED
DUPLICATE = "duplicate"  # a Receipt's status only: nothing is stored for it

log = logs.get_logger("syncd.webhooks")


class InboxUnavailable(Exception):
    """The event could not be stored at all (database down): refuse the delivery."""


@dataclass(frozen=True)
class Receipt:
    status: str  # applied | ignored | duplicate | failed | parked
    kind: EventKind
    event_id: int | None = None
    contact_id: int | None = None


def dedupe_key(event: InboundEvent, *, source: str = SOURCE_WEBHOOK) -> str:
    content: dict[str, Any] = {
        "type": event.type,
        "fired_at": as_utc(event.fired_at).isoformat() if event.fired_at else None,
        "list_id": event.list_id, "email": event.email, "old_email": event.old_email,
        "new_email": event.new_email, "reason": event.reason, "action": event.action,
        "campaign_id": event.campaign_id,
    }
    if event.kind is EventKind.PROFILE:
        content["merges"] = sorted(event.merges.items())
    if event.kind is EventKind.UNKNOWN or event.fired_at is None:
        content["fields"] = event.fields
    if source != SOURCE_WEBHOOK:
        content["source"] = source
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _channel(source: str) -> LedgerChannel:
    return (LedgerChannel.RECONCILIATION if source == SOURCE_RECONCILIATION
            else LedgerChannel.ESP_WEBHOOK)


def describe_error(exc: BaseException) -> str:
    """Error text for the inbox row and logs: our own messages name no address; anything
    else is reduced to its type (SQL errors carry bound parameters, i.e. addresses)."""
    if isinstance(exc, effects.Unappliable):
        return str(exc)[:500]
    return type(exc).__name__


def _row(event: InboundEvent, body: str, keyring: Keyring, *, key: str, source: str,
         now: datetime) -> dict[str, Any]:
    address = event.address
    return {
        "dedupe_key": key, "kind": str(event.kind), "list_id": event.list_id,
        "fired_at": event.fired_at, "received_at": now,
        "address_hmac": keyring.address_hmac(address) if address else None,
        "body": body, "source": source,
    }


def _insert(session: Session, values: dict[str, Any]) -> int | None:
    """The new row's id, or None when an event with this dedupe key is stored already."""
    inserted = stored.insert(session, [values])
    return inserted[0] if inserted else None


@contextmanager
def _unit(sessions: sessionmaker[Session], deadline: float | None) -> Iterator[Session]:
    if deadline is None:
        with transaction(sessions) as session:
            yield session
    else:
        with deadline_transaction(sessions, deadline) as session:
            yield session


def _prepared(event: InboundEvent, body: str, keyring: Keyring, source: str
              ) -> tuple[str, datetime, dict[str, Any]]:
    key = dedupe_key(event, source=source)
    now = utcnow()
    return key, now, _row(event, body, keyring, key=key, source=source, now=now)


def store_and_apply(session: Session, event: InboundEvent, body: str, *, settings: Settings,
                    keyring: Keyring, source: str = SOURCE_WEBHOOK) -> Receipt:
    """Store and apply one event in the caller's transaction (or savepoint); raises what
    applying raised (the caller rolls back, then `store_failed`)."""
    key, now, row = _prepared(event, body, keyring, source)
    event_id = _insert(session, row | {"status": InboxStatus.APPLIED, "attempts": 1})
    if event_id is None:
        return Receipt(DUPLICATE, event.kind)
    # One flush at commit: the effects' ORM writes (revision bumps, audit rows) go out
    # together, not before each of the effects' queries.
    with session.no_autoflush:
        outcome = effects.apply(session, event, settings=settings, keyring=keyring,
                                event_key=key, channel=_channel(source), now=now)
    if outcome.status != InboxStatus.APPLIED:
        stored.set_status(session, [event_id], outcome.status, error=outcome.note[:500])
    return Receipt(outcome.status, event.kind, event_id, outcome.contact_id)


def failed_status(failure: Exception) -> InboxStatus | None:
    """What an event whose apply raised `failure` is kept as; None: busy, not broken, so
    nothing is kept and the delivery is refused (storing it as failed would answer 2xx
    before the purge, I3)."""
    if is_transient(failure):
        return None
    return PARKED if isinstance(failure, effects.Unappliable) else FAILED


def store_failed(session: Session, event: InboundEvent, body: str, status: InboxStatus,
                 failure: Exception, *, keyring: Keyring, source: str = SOURCE_WEBHOOK
                 ) -> Receipt:
    """Keep the raw event as failed or parked, after its apply was rolled back."""
    _, _, row = _prepared(event, body, keyring, source)
    event_id = _insert(session, row | {"status": status, "attempts": 1,
                                       "last_error": describe_error(failure)})
    return Receipt(DUPLICATE if event_id is None else status, event.kind, event_id)


def after_failure(sessions: sessionmaker[Session], receipt: Receipt,
                  failure: Exception) -> None:
    """After the commit that kept a failed or parked event: its alert or warning."""
    if receipt.status == PARKED:
        _alert_parked(receipt.event_id, str(receipt.kind), describe_error(failure))
        try:
            refresh_parked_gauge(sessions)
        except Exception:
            log.warning("parked gauge not refreshed")
    elif receipt.status == FAILED:
        log.warning("webhook event failed to apply; kept for retry",
                    event_id=receipt.event_id, kind=str(receipt.kind),
                    error=describe_error(failure),
                    exc_info=not isinstance(failure, effects.Unappliable))


def receive(sessions: sessionmaker[Session], event: InboundEvent, body: str, *,
            settings: Settings, keyring: Keyring, source: str = SOURCE_WEBHOOK,
            deadline: float | None = None) -> Receipt:
    """Store and apply one event. Returns only once the event is committed (applied,
    ignored, failed or parked) or was already there; raises InboxUnavailable otherwise
    (database down or busy past `deadline`, a time.monotonic() value: nothing written).
    The webhook endpoint applies deliveries in batches (syncd.webhooks.group_commit)."""
    try:
        with _unit(sessions, deadline) as session:
            return store_and_apply(session, event, body, settings=settings,
                                   keyring=keyring, source=source)
    except Exception as exc:
        failure = exc
    status = failed_status(failure)
    if status is None:
        raise InboxUnavailable(type(failure).__name__) from None
    try:
        with _unit(sessions, deadline) as session:
            receipt = store_failed(session, event, body, status, failure, keyring=keyring,
                                   source=source)
    except Exception as exc:
        raise InboxUnavailable(type(exc).__name__) from None
    after_failure(sessions, receipt, failure)
    return receipt


def _alert_parked(event_id: int | None, kind: str, error: str) -> None:
    # The alert: one error line per parked event, found by its fixed text.
    log.error("webhook event parked", event_id=event_id, kind=kind, error=error)


def refresh_parked_gauge(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as session:
        parked = stored.count(session, PARKED)
    INBOX_PARKED.set(parked)
    return parked


def retry_pending(ctx: Any, *, limit: int = 1000) -> int:
    """Re-apply `failed` events, oldest first; park one after `inbox_max_attempts`
    attempts (error log "webhook event parked"). Returns how many were applied."""
    settings: Settings = ctx.settings
    sessions: sessionmaker[Session] = ctx.sessions
    keyring: Keyring = ctx.keyring
    with transaction(sessions) as session:
        ids = stored.ids_with_status(session, FAILED, limit)
    done = 0
    for event_id in ids:
        try:
            with transaction(sessions) as session:
                found = stored.take(session, event_id, lock=True)
                if found is None or found.status != FAILED:
                    continue  # another replica took it, or it is done
                if not found.body:
                    raise effects.Unappliable("raw body no longer kept (retention)")
                event = parse_body(found.body.encode("utf-8"))
                outcome = effects.apply(session, event, settings=settings, keyring=keyring,
                                        event_key=found.dedupe_key,
                                        channel=_channel(found.source), now=utcnow())
                stored.set_status(session, [event_id], outcome.status, attempted=True)
            done += 1
            log.info("webhook event applied on retry", event_id=event_id)
        except Exception as exc:
            _record_failure(sessions, event_id, exc, settings.inbox_max_attempts)
    refresh_parked_gauge(sessions)
    return done


def _record_failure(sessions: sessionmaker[Session], event_id: int, exc: Exception,
                    max_attempts: int) -> None:
    error = describe_error(exc)
    with transaction(sessions) as session:
        found = stored.take(session, event_id, lock=False)
        if found is None:
            return
        attempts = found.attempts + 1
        parked = attempts >= max_attempts or isinstance(exc, effects.Unappliable)
        stored.set_status(session, [event_id], PARKED if parked else FAILED, error=error,
                          attempted=True)
    if not parked:
        log.warning("webhook event retry failed", event_id=event_id, error=error,
                    attempts=attempts)
        return
    _alert_parked(event_id, found.kind, error)
