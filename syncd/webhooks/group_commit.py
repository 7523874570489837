"""Group commit for webhook deliveries: the deliveries that arrive together are stored and
applied by one writer thread in ONE transaction, each in its own SAVEPOINT, and answered
only after that transaction's COMMIT.

Why (docs/performance.md, issue 16): on PostgreSQL every purge holds the ledger chain
head's row lock from its append to its commit, so purges ran one at a time anyway, each
paying its own BEGIN, pool check-out, deadline setup, head lock and COMMIT. Here the head
is locked and read once per batch (syncd.store.chain_hold) and those round trips are paid
once per batch.

Invariants: nothing is answered 2xx before the transaction holding its delivery
committed; a delivery whose savepoint fails rolls back alone (kept as failed or parked in
a savepoint of its own, as inbox.receive keeps it, or refused when the database is busy);
when the commit fails every delivery of the batch is refused and nothing is kept, so a
crash or a failed commit loses only unanswered deliveries, which Mailchimp retries.
Deliveries are applied in arrival order, so a later one for the same person sees the
earlier one's writes. A batch is what queued while the previous one was applied, at most
MAX_BATCH: no delivery waits for others to arrive. Its transaction has the deadline of
its oldest delivery (lock and statement waits bounded by it; no commit after it); a
delivery without the time left to start is refused at once.

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
from syncd.store.chain_hold import hold_head, savepoint
from syncd.webhooks import inbox
from syncd.webhooks.inbox import InboxUnavailable, Receipt
from syncd.webhooks.mailchimp_form import InboundEvent

MAX_BATCH = 64
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


def receive_together(sessions: sessionmaker[Session], deliveries: Sequence[Delivery], *,
                     settings: Settings, keyring: Callable[[], Keyring]) -> list[Result]:
    """Store and apply these deliveries in one transaction, in order; each one's Receipt
    (committed) or InboxUnavailable (nothing of it kept: refuse it). `keyring` is asked
    for inside the try: it may need the database."""
    results: list[Result] = [InboxUnavailable("DeadlineExceeded")] * len(deliveries)
    now = time.monotonic()
    live = [i for i, d in enumerate(deliveries)
            if (d.deadline - now) * 1000 >= MIN_BUDGET_MS]
    if not live:
        return results
    later: _Later = []
    try:
        keys = keyring()
        with deadline_transaction(sessions, min(deliveries[i].deadline for i in live)
                                  ) as session:
            hold_head(session)
            for i in live:
                results[i] = _one(session, deliveries[i], settings=settings, keyring=keys,
                                  sessions=sessions, later=later)
    except Exception as exc:
        refused = InboxUnavailable(type(exc).__name__)
        return [refused] * len(deliveries)
    for step in later:
        step()
    return results


class GroupWriter:
    """One writer thread that applies queued deliveries in batches (receive_together)."""

    def __init__(self, sessions: sessionmaker[Session], *, settings: Settings,
                 keyring: Callable[[], Keyring], max_batch: int = MAX_BATCH) -> None:
        self._sessions = sessions
        self._settings = settings
        self._keyring = keyring
        self._max_batch = max_batch
        self._queue: deque[tuple[Delivery, Future[Receipt]]] = deque()
        self._ready = threading.Condition()
        self._running = False

    def submit(self, delivery: Delivery) -> Future[Receipt]:
        """Queue a delivery; the future ends with its Receipt once committed, or with
        InboxUnavailable. Cancelling it before its batch starts drops it unapplied."""
        done: Future[Receipt] = Future()
        with self._ready:
            self._queue.append((delivery, done))
            if self._running:
                self._ready.notify()
            else:
                self._running = True
                threading.Thread(target=self._run, name="syncd-webhook-writer",
                                 daemon=True).start()
        return done

    def _next_batch(self) -> list[tuple[Delivery, Future[Receipt]]] | None:
        with self._ready:
            if not self._queue:
                self._ready.wait(IDLE_SECONDS)
            if not self._queue:
                self._running = False
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
