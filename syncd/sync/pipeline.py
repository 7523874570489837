"""The push pipeline of a sync run: planned changes become bounded parallel ESP calls
(adds in batches, after their write-ahead attempt markers); every answer is checkpointed
on the calling thread (I8: nothing is marked pushed before the ESP confirmed it)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import datetime
from typing import Any

from syncd.context import AppContext
from syncd.esp.errors import EspError
from syncd.esp.protocol import EspWriter
from syncd.schema import PushOutcome
from syncd.store import push_checkpoint
from syncd.store.push_checkpoint import Settlement
from syncd.sync import failpoints, permission_moves
from syncd.sync.plan import Action, Change
from syncd.sync.push import Outcome, run_add_batch, run_member_change, settle_without_call
from syncd.sync.sync_report import Tally

FLUSH_EVERY = 500
# Enum members read once, here: on Python 3.11 every `Enum.MEMBER` in the code goes through
# the enum metaclass's __getattr__ hook (about a thousand instructions), and these are
# read for every contact a run pushes.
_ADD, _RECONSENT, _UPDATE = Action.ADD, Action.RECONSENT, Action.UPDATE
# Written outcomes whose member data (GDPR permissions included) Mailchimp took.
_SENT = frozenset({PushOutcome.ADDED, PushOutcome.RECONSENT, PushOutcome.UPDATED,
                   PushOutcome.UNSUBSCRIBED})


# The cyclic garbage collector during a push. A push makes about ten small objects per
# contact, so the collector's full pass would run many times per run, each over every
# object of the process (modules, SQLAlchemy's caches), and its young passes every 700
# objects: together a quarter of a first push's CPU. For the run, the objects that
# existed before it are set aside (gc.freeze) and the young passes run less often; the
# last run to finish puts both back, so nothing is ever kept from collection.
_GC_YOUNG_THRESHOLD = 20_000
_gc_lock = threading.Lock()
_gc_runs = 0
_gc_saved: tuple[int, int, int] = (0, 0, 0)


def _collector_eased() -> None:
    global _gc_runs, _gc_saved  # noqa: PLW0603 - one process-wide setting, counted
    with _gc_lock:
        if _gc_runs == 0:
            _gc_saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(_GC_YOUNG_THRESHOLD, _gc_saved[0]), *_gc_saved[1:])
        _gc_runs += 1


def _collector_restored() -> None:
    global _gc_runs  # noqa: PLW0603
    with _gc_lock:
        _gc_runs -= 1
        if _gc_runs == 0:
            gc.set_threshold(*_gc_saved)
            gc.unfreeze()


def _settlement(item: Outcome) -> Settlement | None:
    """The outcome's checkpoint, with the GDPR permissions the write sent: a later read
    that finds one of them off is the member's own switch (syncd.sync.permission_moves)."""
    change, settlement = item.change, item.settlement
    data = change.data
    if (settlement is None or item.kind not in _SENT or data is None
            or not data.marketing_permissions
            or (change.action is _UPDATE and not change.write_data)):
        return settlement
    return replace(settlement,
                   esp_permissions=permission_moves.encode(data.marketing_permissions))


class Pipeline:
    """Bounded parallel ESP calls; results are checkpointed on the calling thread."""

    def __init__(self, ctx: AppContext, esp: EspWriter, audience_id: str,
                 tally: Tally, now: datetime) -> None:
        self.ctx, self.esp, self.audience_id, self.tally, self.now = (
            ctx, esp, audience_id, tally, now)
        settings = ctx.settings
        self.batch_size = settings.mailchimp_batch_size
        self.manage_foreign = settings.mailchimp_manage_foreign_members
        self.executor = ThreadPoolExecutor(max_workers=settings.mailchimp_max_connections,
                                           thread_name_prefix="syncd-push")
        # At most 2 x connections units queued or running: memory O(batch x connections).
        self.limit = 2 * settings.mailchimp_max_connections
        self.in_flight: dict[Future[list[Outcome]], list[Change]] = {}
        self.adds: list[Change] = []
        self.settlements: list[Settlement] = []
        self.abort: EspError | None = None
        self.done = 0
        self._pushed_once = False
        self._confirmed_once = False
        self._checkpoint_has_writes = False
        _collector_eased()

    # -- submission -----------------------------------------------------------------

    def take(self, change: Change) -> None:
        if change.action is _ADD:
            self.adds.append(change)
            if len(self.adds) >= self.batch_size:
                self.flush_adds()
        elif change.writes:
            if change.action is _RECONSENT:
                # Write-ahead, as for adds: `pending` mails the person; a crash before the
                # checkpoint must not lead to a second confirmation mail.
                push_checkpoint.mark_attempts(self.ctx.engine, self.audience_id,
                                         [(change.contact_id, change.fingerprint or "")])
            self._submit([change], self._member, change)
        else:
            settlement = settle_without_call(change)
            self.done += 1
            if settlement is not None:
                self.settlements.append(settlement)

    def flush_adds(self) -> None:
        batch, self.adds = self.adds, []
        if not batch:
            return
        # Write-ahead: "sent, not confirmed" before the call, so an "already a member"
        # answer after a crash or a timed-out batch is recognised as our own add.
        push_checkpoint.mark_attempts(self.ctx.engine, self.audience_id,
                                 [(c.contact_id, c.fingerprint or "") for c in batch])
        self._submit(batch, self._batch, batch)

    def _batch(self, batch: list[Change]) -> list[Outcome]:
        return run_add_batch(self.esp, batch, manage_foreign=self.manage_foreign, now=self.now)

    def _member(self, change: Change) -> list[Outcome]:
        return [run_member_change(self.esp, change, now=self.now)]

    def _submit(self, changes: list[Change], fn: Callable[[Any], list[Outcome]],
                arg: Any) -> None:
        while len(self.in_flight) >= self.limit:
            self.collect(block=True)
        if self.abort is not None:
            return
        if not self._pushed_once:
            self._pushed_once = True
            failpoints.reached("before_push")
        self.in_flight[self.executor.submit(fn, arg)] = changes

    # -- completion -----------------------------------------------------------------

    def collect(self, *, block: bool) -> None:
        if not self.in_flight:
            return
        finished, _ = wait(list(self.in_flight), timeout=None if block else 0,
                           return_when=FIRST_COMPLETED)
        for future in finished:
            changes = self.in_flight.pop(future)
            try:
                outcomes = future.result()
            except EspError as exc:
                # Run-level: bad key mid-run, or the ESP still failing after all retries.
                self.abort = self.abort or exc
                self.done += len(changes)
                self.tally.kinds[PushOutcome.FAILED] += len(changes)
                continue
            count, keep = self.tally.outcome, self.settlements.append
            self.done += len(outcomes)
            for item in outcomes:
                count(item)
                settlement = _settlement(item)
                if settlement is not None:
                    keep(settlement)
                    self._checkpoint_has_writes = True
            if not self._confirmed_once:
                self._confirmed_once = True
                failpoints.reached("after_push_before_checkpoint")
        if len(self.settlements) >= FLUSH_EVERY:
            self.checkpoint()

    def checkpoint(self) -> None:
        batch, self.settlements = self.settlements, []
        push_checkpoint.settle(self.ctx.engine, self.audience_id, batch)
        if self._checkpoint_has_writes:
            self._checkpoint_has_writes = False
            failpoints.reached("after_checkpoint")

    def drain(self) -> None:
        try:
            while self.in_flight:
                self.collect(block=True)
            self.checkpoint()
            self.executor.shutdown(wait=True)
        finally:
            _collector_restored()
