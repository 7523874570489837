"""Group commit for webhook deliveries: the deliveries that arrive together are stored and
applied by a writer thread in ONE transaction and answered only after its COMMIT; a
delivery that fails rolls back alone (its own SAVEPOINT, see receive_together).

Why (docs/performance.md, issue 16): on PostgreSQL every purge holds the ledger chain
head's row lock from its append to its commit, so purges ran one at a time anyway, each
paying its own BEGIN, pool check-out, deadline setup, head lock and COMMIT. Here the head
is locked and read once per batch (syncd.store.chain_hold) and those round trips are paid
once per batch. The batch runs without savepoints first (they cost two round trips and
most of the writer's CPU per delivery); only a batch in which a delivery raised is
applied again, a savepoint each.

Invariants: nothing is answered 2xx before the transaction holding its delivery
committed; a delivery whose savepoint fails rolls back alone (kept as failed or parked in
a savepoint of its own, as inbox.receive keeps it, or refused when the database is busy);
when the commit fails every delivery of the batch is refused and nothing is kept, so a
crash or a failed commit loses only unanswered deliveries, which Mailchimp retries.
The batch's contacts are locked first, in id order, then the head (the lock order of
syncd.store.ledger; an address found only through a rename is locked when read, after
the head: a deadlock with another writer is then detected and one side refused).
Within a batch deliveries are applied in arrival order, so a later one for the same
person sees the earlier one's writes (across the concurrent batches of PostgreSQL's
writers the contact's lock orders them, as it ordered concurrent deliveries before; the
rules do not depend on arrival order, I6). A batch is what queued while the previous
one was applied, at most MAX_BATCH: no delivery waits for others to arrive. Its
transaction has the deadline of its oldest delivery (lock and statement waits bounded by
it; no commit after it); a delivery without the time left to start is refused at once.

The writer's transactions check their connection out of the pool as every transaction
does: the pre-ping is one round trip per batch, not per delivery, and keeps the pool's
handling of a connection the server dropped (a dedicated connection would need its own).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from syncd import logs
from syncd.config import Settings
from syncd.db import MIN_BUDGET_MS, deadline_transaction
from syncd.keys import Keyring
from syncd.store import withdrawal
from syncd.store.chain_hold import hold_head, savepoint
from syncd.webhooks import inbox
from syncd.webhooks.inbox import InboxUnavailable, Receipt
from syncd.webhooks.mailchimp_form import InboundEvent

MAX_BATCH = 16
# Writers on PostgreSQL: while one batch holds the chain head, the others do what comes
# before their first write (inbox rows, locks, reads); one writer alone waited out every
# round trip in turn (measured: docs/performance.md). SQLite has one writer at a time.
POSTGRES_WRITERS = 3
# An idle writer thread ends after this long; the next delivery starts another.
IDLE_SECONDS = 2.0

log = logs.get_logger("syncd.webhooks")


@dataclass(frozen=True)
class Delivery:
    event: InboundEvent
    body: str
    deadline: float  # time.monotonic(): committed before it, or refused


Result = Receipt | InboxUnavailable
# Run after the commit (alerts and warnings of events kept as failed or parked).
_Later = list[Callable[[], None]]


def _one(session: Session, delivery: Delivery, *, settings: Settings, keyring: Keyring,
         sessions: sessionmaker[Session], later: _Later) -> Result:
    event, body = delivery.event, delivery.body
    try:
        with savepoint(session):
            return inbox.store_and_apply(session, event, body, settings=settings,
                                         keyring=keyring)
    except Exception as exc:
        failure = exc
    status = inbox.failed_status(failure)
    if status is None:
        return InboxUnavailable(type(failure).__name__)
    try:
        with savepoint(session):
            receipt = inbox.store_failed(session, event, body, status, failure,
                                         keyring=keyring)
    except Exception as exc:
        return InboxUnavailable(type(exc).__name__)
    later.append(lambda: inbox.after_failure(sessions, receipt, failure))
    return receipt


def _take_locks(session: Session, deliveries: Sequence[Delivery]) -> None:
    """The batch's contacts first (every address its events name), then the head, once."""
    withdrawal.lock_addresses(session, [address for d in deliveries for address in (
        d.event.email, d.event.old_email, d.event.new_email) if address])
    hold_head(session)


class _OneFailed(Exception):
    """A delivery raised in the pass without savepoints: the batch is applied again."""


def _without_savepoints(session: Session, deliveries: Sequence[Delivery], *,
                        settings: Settings, keyring: Keyring) -> list[Result]:
    found: list[Result] = []
    for delivery in deliveries:
        try:
            found.append(inbox.store_and_apply(session, delivery.event, delivery.body,
                                               settings=settings, keyring=keyring))
            session.flush()  # the next delivery (the same person?) sees this one's writes
        except Exception as exc:
            raise _OneFailed from exc
    return found


def receive_together(sessions: sessionmaker[Session], deliveries: Sequence[Delivery], *,
                     settings: Settings, keyring: Callable[[], Keyring]) -> list[Result]:
    """Store and apply these deliveries in one transaction, in order; each one's Receipt
    (committed) or InboxUnavailable (nothing of it kept: refuse it). `keyring` is asked
    for inside the try: it may need the database.

    First without savepoints (two round trips fewer per delivery); if any delivery
    raises, that transaction is rolled back whole and the batch applied again with a
    savepoint each, so that only the bad one rolls back. Nothing is answered before the
    transaction that is kept committed."""
    results: list[Result] = [InboxUnavailable("DeadlineExceeded")] * len(deliveries)
    now = time.monotonic()
    live = [i for i, d in enumerate(deliveries)
            if (d.deadline - now) * 1000 >= MIN_BUDGET_MS]
    if not live:
        return results
    deadline = min(deliveries[i].deadline for i in live)
    later: _Later = []
    try:
        keys = keyring()
        try:
            with deadline_transaction(sessions, deadline) as session:
                _take_locks(session, [deliveries[i] for i in live])
                found = _without_savepoints(session, [deliveries[i] for i in live],
                                            settings=settings, keyring=keys)
        except _OneFailed:
            with deadline_transaction(sessions, deadline) as session:
                _take_locks(session, [deliveries[i] for i in live])
                found = [_one(session, deliveries[i], settings=settings, keyring=keys,
                              sessions=sessions, later=later) for i in live]
    except Exception as exc:
        refused = InboxUnavailable(type(exc).__name__)
        return [refused] * len(deliveries)
    for i, result in zip(live, found, strict=True):
        results[i] = result
    for step in later:
        step()
    return results


class GroupWriter:
    """Writer threads (at most `writers`) that apply queued deliveries in batches
    (receive_together), each batch what queued while the previous ones were applied."""

    def __init__(self, sessions: sessionmaker[Session], *, settings: Settings,
                 keyring: Callable[[], Keyring], max_batch: int = MAX_BATCH,
                 writers: int = 1) -> None:
        self._sessions = sessions
        self._writers = writers
        self._settings = settings
        self._keyring = keyring
        self._max_batch = max_batch
        self._queue: deque[tuple[Delivery, Future[Receipt]]] = deque()
        self._ready = threading.Condition()
        self._running = 0  # writer threads alive

    def submit(self, delivery: Delivery) -> Future[Receipt]:
        """Queue a delivery; the future ends with its Receipt once committed, or with
        InboxUnavailable. Cancelling it before its batch starts drops it unapplied."""
        done: Future[Receipt] = Future()
        with self._ready:
            self._queue.append((delivery, done))
            if self._running >= self._writers:
                self._ready.notify()
            else:
                self._running += 1
                threading.Thread(target=self._run, name="syncd-webhook-writer",
                                 daemon=True).start()
        return done

    def _next_batch(self) -> list[tuple[Delivery, Future[Receipt]]] | None:
        with self._ready:
            if not self._queue:
                self._ready.wait(IDLE_SECONDS)
            if not self._queue:
                self._running -= 1
                return None
            taken = [self._queue.popleft()
                     for _ in range(min(self._max_batch, len(self._queue)))]
        # A delivery whose waiter gave up (deadline) is not applied: it was refused.
        return [(d, f) for d, f in taken if f.set_running_or_notify_cancel()]

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:
                continue
            try:
                results = receive_together(self._sessions, [d for d, _ in batch],
                                           settings=self._settings, keyring=self._keyring)
            except BaseException as exc:  # a bug here must not leave waiters hanging
                log.error("webhook writer failed", error=type(exc).__name__)
                results = [InboxUnavailable(type(exc).__name__)] * len(batch)
            for (_, done), result in zip(batch, results, strict=True):
                if isinstance(result, InboxUnavailable):
                    done.set_exception(result)
                else:
                    done.set_result(result)
