"""`run_sync`: one sync run of the configured audience. The one code path: `syncd sync`
and the scheduler call exactly this function.

Flow: single-runner lock -> safety limit (planned unsubscribes vs members known live)
-> ESP check -> stream changed contacts in chunks -> plan -> write-ahead attempt
markers -> ESP calls in parallel (bounded) -> checkpoint from the ESP's answers only
(I8) -> record the run."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import update

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.esp.errors import EspError
from syncd.esp.protocol import EspWriter
from syncd.logs import get_logger
from syncd.metrics import (
    HELD_UNSUBSCRIBES,
    LAST_SUCCESS,
    MEMBERS,
    RUNS,
    WITHDRAWAL_LATENCY,
)
from syncd.runner_lock import single_runner
from syncd.schema import SyncRun
from syncd.sync import audience_pull, checkpoint, failpoints, source
from syncd.sync.checkpoint import Settlement
from syncd.sync.plan import Action, Change, PlanConfig, plan_contact
from syncd.sync.push import Outcome, run_add_batch, run_member_change, settle_without_call

log = get_logger(__name__)
READ_CHUNK = 2000
FLUSH_EVERY = 500
MAX_EXAMPLES = 10
_PUSHED = ("added", "reconsent", "updated", "unsubscribed", "adopted")


@dataclass(frozen=True)
class PlannedExample:
    """A dry-run example, for the operator's terminal only (it names the address)."""

    email: str
    action: str
    reason: str


@dataclass(frozen=True)
class SyncReport:
    outcome: str  # succeeded | interrupted | refused | failed | dry_run
    audience_id: str
    dry_run: bool = False
    considered: int = 0
    added: int = 0
    updated: int = 0
    unsubscribed: int = 0
    reconsent_pending: int = 0
    adopted: int = 0
    unchanged: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    parked: int = 0
    failed: int = 0
    write_calls: int = 0
    duration_seconds: float = 0.0
    planned_unsubscribes: int = 0
    known_members: int = 0
    unsubscribe_limit: int = 0
    # Unsubscribes the safety limit held back this run (adds and updates still went).
    held_unsubscribes: int = 0
    # The first sync of an audience reads it whole first (syncd.sync.audience_pull).
    audience_pulled: bool = False
    error: str | None = None
    examples: tuple[PlannedExample, ...] = ()

    @property
    def partial(self) -> bool:
        return self.parked > 0 or self.failed > 0

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["skipped"] = dict(self.skipped)
        doc["examples"] = [asdict(e) for e in self.examples]
        return doc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)

    def counts(self) -> dict[str, Any]:
        """The numbers only (no addresses): for logs, sync_runs and metrics."""
        doc = self.to_dict()
        doc.pop("examples")
        return doc


class _Tally:
    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.considered = 0
        self.examples: list[PlannedExample] = []
        # (outcome, reason) -> count; published once per run (a label lookup per contact
        # would cost more than the planning).
        self.metric: Counter[tuple[str, str]] = Counter()

    def publish(self) -> None:
        for (outcome, reason), count in self.metric.items():
            MEMBERS.labels(outcome=outcome, reason=reason).inc(count)
        self.metric.clear()

    def planned(self, change: Change, email: str, dry_run: bool) -> None:
        self.considered += 1
        if change.action in (Action.SETTLE, Action.HOLD):
            if change.category == "unchanged":
                self.kinds["unchanged"] += 1
            else:
                self.skipped[change.category] += 1
                self.metric["skipped", change.category] += 1
        if dry_run:
            kind = {Action.ADD: "reconsent" if change.status == "pending" else "added",
                    Action.UPDATE: "updated", Action.RECONSENT: "reconsent",
                    Action.UNSUBSCRIBE: "unsubscribed"}.get(change.action)
            if kind:
                self.kinds[kind] += 1
            if len(self.examples) < MAX_EXAMPLES and change.category != "unchanged":
                self.examples.append(PlannedExample(email, str(change.action), change.reason))

    def outcome(self, item: Outcome) -> None:
        if item.kind in ("foreign", "missing"):
            label = "foreign_member" if item.kind == "foreign" else "member_missing"
            self.skipped[label] += 1
            self.metric["skipped", label] += 1
            return
        if item.kind == "unsubscribed" and item.change.withdrawn_at is not None:
            WITHDRAWAL_LATENCY.observe(max(
                0.0, (utcnow() - item.change.withdrawn_at).total_seconds()))
        self.kinds[item.kind] += 1
        label = ("pushed" if item.kind in _PUSHED else item.kind)
        self.metric[label, item.change.category] += 1

    def report(self, outcome: str, audience_id: str, **extra: Any) -> SyncReport:
        k = self.kinds
        return SyncReport(
            outcome=outcome, audience_id=audience_id, considered=self.considered,
            added=k["added"], updated=k["updated"], unsubscribed=k["unsubscribed"],
            reconsent_pending=k["reconsent"], adopted=k["adopted"], unchanged=k["unchanged"],
            skipped=dict(sorted(self.skipped.items())), parked=k["parked"], failed=k["failed"],
            examples=tuple(self.examples), **extra)


@dataclass(frozen=True)
class _Run:
    """What every step of one run shares."""

    ctx: AppContext
    audience_id: str
    cfg: PlanConfig
    now: datetime
    started: float
    planned_unsubscribes: int
    known_members: int
    unsubscribe_limit: int
    hold_unsubscribes: bool = False

    @property
    def safety(self) -> dict[str, Any]:
        return {"planned_unsubscribes": self.planned_unsubscribes,
                "known_members": self.known_members,
                "unsubscribe_limit": self.unsubscribe_limit}

    def elapsed(self) -> float:
        return time.monotonic() - self.started



def _candidates(ctx: AppContext, audience_id: str, cfg: PlanConfig, *,
                live_only: bool = False) -> Iterable[list[source.Candidate]]:
    return source.iter_candidates(ctx.engine, audience_id, ctx.keyring, chunk_size=READ_CHUNK,
                                  purpose_lists=cfg.tag_lists, live_only=live_only,
                                  pulled_at=audience_pull.pulled_at(ctx, audience_id))


def _safety(ctx: AppContext, audience_id: str, cfg: PlanConfig,
            now: datetime) -> tuple[int, int, int]:
    """(planned unsubscribes, members known live, limit). Only contacts known live can be
    unsubscribed, so the pre-count reads just those among the changed contacts."""
    planned = sum(
        plan_contact(c.facts, c.known, cfg, now).action is Action.UNSUBSCRIBE
        for chunk in _candidates(ctx, audience_id, cfg, live_only=True) for c in chunk)
    known = source.count_live_members(ctx.engine, audience_id)
    # Above the floor AND above the share: a handful of withdrawals never waits on the
    # size of the audience (I11).
    limit = max(ctx.settings.sync_unsubscribe_floor,
                int(known * ctx.settings.sync_max_unsubscribe_share))
    return planned, known, limit


def run_sync(ctx: AppContext, *, dry_run: bool = False, force: bool = False,
             stop: threading.Event | None = None,
             progress: Callable[[int, int], None] | None = None,
             esp: EspWriter | None = None) -> SyncReport:
    """Bring the audience in line with the CRM for the contacts that changed.

    Raises RunnerBusy (another run holds the lock), ConfigError, and EspError for
    run-level failures (bad key, unknown audience, ESP unavailable after retries), after
    recording the failed run. Returns the report otherwise (refused and interrupted
    runs included)."""
    audience_id = ctx.settings.require_audience_id()
    with single_runner(ctx.engine, f"sync:{audience_id}"):
        started = time.monotonic()
        owned = esp is None
        if esp is None and not dry_run:
            from syncd.esp.mailchimp import mailchimp_client

            esp = mailchimp_client(ctx.settings)
        try:
            pulled = False
            if (esp is not None and not dry_run
                    and not audience_pull.was_pulled(ctx, audience_id)):
                # The first sync of an audience: learn the members that were there before
                # syncd, so that a withdrawal reaches them too (rule 12, I11).
                audience_pull.pull_locked(ctx, esp, audience_id, stop=stop)
                pulled = True
            now = utcnow()
            cfg = PlanConfig.from_settings(ctx.settings)
            planned_unsubs, known, limit = _safety(ctx, audience_id, cfg, now)
            refused = planned_unsubs > limit and not force
            run = _Run(ctx, audience_id, cfg, now, started, planned_unsubs, known, limit,
                       hold_unsubscribes=refused)
            if dry_run or esp is None:
                return _dry_run(run, refused=refused)
            run_id = _record_start(ctx, audience_id, now)
            report = _push(run, esp, run_id, stop=stop, progress=progress,
                           audience_pulled=pulled)
        finally:
            if owned and esp is not None:
                close = getattr(esp, "close", None)
                if close is not None:
                    close()
    HELD_UNSUBSCRIBES.labels(audience=audience_id).set(report.held_unsubscribes)
    if report.held_unsubscribes:
        log.error("sync_unsubscribes_held", **report.counts())
    return report


def _refusal_message(planned: int, known: int, ctx: AppContext) -> str:
    share = ctx.settings.sync_max_unsubscribe_share
    floor = ctx.settings.sync_unsubscribe_floor
    return (f"refused: the plan would unsubscribe {planned} of the {known} members syncd "
            f"knows at Mailchimp, more than sync_unsubscribe_floor = {floor} and more than "
            f"sync_max_unsubscribe_share = {share:.0%} ({int(known * share)}); adds and "
            "updates were sent, the unsubscribes are held: check the CRM data, then run "
            "with --force if intended")


def _dry_run(run: _Run, *, refused: bool) -> SyncReport:
    """Plans everything, writes nothing: no push_state, no sync_runs, no ESP call."""
    tally = _Tally()
    for chunk in _candidates(run.ctx, run.audience_id, run.cfg):
        for cand in chunk:
            tally.planned(plan_contact(cand.facts, cand.known, run.cfg, run.now),
                          cand.facts.email, dry_run=True)
    return tally.report("refused" if refused else "dry_run", run.audience_id, dry_run=True,
                        duration_seconds=run.elapsed(), **run.safety,
                        error=(_refusal_message(run.planned_unsubscribes, run.known_members,
                                                run.ctx) if refused else None))


class _Pipeline:
    """Bounded parallel ESP calls; results are checkpointed on the calling thread."""

    def __init__(self, ctx: AppContext, esp: EspWriter, audience_id: str,
                 tally: _Tally, now: datetime) -> None:
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

    # -- submission -----------------------------------------------------------------

    def take(self, change: Change) -> None:
        if change.action is Action.ADD:
            self.adds.append(change)
            if len(self.adds) >= self.batch_size:
                self.flush_adds()
        elif change.writes:
            if change.action is Action.RECONSENT:
                # Write-ahead, as for adds: `pending` mails the person; a crash before the
                # checkpoint must not lead to a second confirmation mail.
                checkpoint.mark_attempts(self.ctx.engine, self.audience_id,
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
        checkpoint.mark_attempts(self.ctx.engine, self.audience_id,
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
                self.tally.kinds["failed"] += len(changes)
                continue
            for item in outcomes:
                self.tally.outcome(item)
                self.done += 1
                if item.settlement is not None:
                    self.settlements.append(item.settlement)
                    self._checkpoint_has_writes = True
            if not self._confirmed_once:
                self._confirmed_once = True
                failpoints.reached("after_push_before_checkpoint")
        if len(self.settlements) >= FLUSH_EVERY:
            self.checkpoint()

    def checkpoint(self) -> None:
        batch, self.settlements = self.settlements, []
        checkpoint.settle(self.ctx.engine, self.audience_id, batch)
        if self._checkpoint_has_writes:
            self._checkpoint_has_writes = False
            failpoints.reached("after_checkpoint")

    def drain(self) -> None:
        while self.in_flight:
            self.collect(block=True)
        self.checkpoint()
        self.executor.shutdown(wait=True)


def _push(run: _Run, esp: EspWriter, run_id: int, *, stop: threading.Event | None,
          progress: Callable[[int, int], None] | None,
          audience_pulled: bool = False) -> SyncReport:
    ctx, audience_id, now = run.ctx, run.audience_id, run.now
    tally = _Tally()
    writes_before = getattr(esp, "write_calls", 0)
    try:
        esp.ping()
    except EspError as exc:
        _fail(run, run_id, tally, exc)
        raise
    total = source.count_candidates(ctx.engine, audience_id) if progress else 0
    pipeline = _Pipeline(ctx, esp, audience_id, tally, now)
    try:
        interrupted = _stream(run, pipeline, tally, stop=stop, progress=progress, total=total)
    except Exception as exc:
        # A bug or a database failure: the run is recorded as failed, then it surfaces.
        _fail(run, run_id, tally, EspError(f"sync failed: {type(exc).__name__}"))
        raise
    if progress:
        progress(pipeline.done, max(total, pipeline.done))
    write_calls = getattr(esp, "write_calls", 0) - writes_before
    if pipeline.abort is not None:
        _fail(run, run_id, tally, pipeline.abort, write_calls=write_calls)
        raise pipeline.abort
    held = tally.kinds["held"]
    outcome = "interrupted" if interrupted else ("refused" if held else "succeeded")
    report = tally.report(outcome, audience_id, duration_seconds=run.elapsed(),
                          write_calls=write_calls, held_unsubscribes=held,
                          audience_pulled=audience_pulled,
                          error=(_refusal_message(run.planned_unsubscribes,
                                                  run.known_members, ctx) if held else None),
                          **run.safety)
    _finish(ctx, run_id, report)
    tally.publish()
    RUNS.labels(kind="sync", outcome=outcome).inc()
    if outcome == "succeeded":
        LAST_SUCCESS.labels(kind="sync").set(time.time())
    return report


def _stream(run: _Run, pipeline: _Pipeline, tally: _Tally, *, stop: threading.Event | None,
            progress: Callable[[int, int], None] | None, total: int) -> bool:
    """Plan and push chunk by chunk; True if stopped early (graceful shutdown)."""
    interrupted = False
    try:
        for chunk in _candidates(run.ctx, run.audience_id, run.cfg):
            if stop is not None and stop.is_set():
                interrupted = True
                break
            for cand in chunk:
                change = plan_contact(cand.facts, cand.known, run.cfg, run.now)
                if change.action is Action.UNSUBSCRIBE and run.hold_unsubscribes:
                    change = _held(change)
                    tally.kinds["held"] += 1
                tally.planned(change, cand.facts.email, dry_run=False)
                pipeline.take(change)
            pipeline.collect(block=False)
            if pipeline.abort is not None:
                break
            if progress:
                progress(pipeline.done, total)
        if not interrupted and pipeline.abort is None:
            pipeline.flush_adds()
    finally:
        # Whatever happened: let the calls in flight finish and checkpoint their answers.
        pipeline.drain()
    return interrupted


def _held(change: Change) -> Change:
    """The safety limit holds this unsubscribe: nothing is sent or settled, so the
    contact is planned again next run (and released by `--force`)."""
    return replace(change, action=Action.HOLD, category="held_by_safety_limit",
                   reason=f"{change.reason}; unsubscribe held by the safety limit "
                          "(`syncd sync --force` releases it)")


def _fail(run: _Run, run_id: int, tally: _Tally, exc: EspError, write_calls: int = 0) -> None:
    report = tally.report("failed", run.audience_id, duration_seconds=run.elapsed(),
                          error=str(exc), write_calls=write_calls, **run.safety)
    _finish(run.ctx, run_id, report)
    tally.publish()
    RUNS.labels(kind="sync", outcome="failed").inc()
    log.error("sync_failed", **report.counts())


def _record_start(ctx: AppContext, audience_id: str, now: datetime) -> int:
    with ctx.sessions.begin() as session:
        row = SyncRun(kind="sync", audience_id=audience_id, started_at=now, outcome="running",
                      counts={})
        session.add(row)
        session.flush()
        return row.id


def _finish(ctx: AppContext, run_id: int, report: SyncReport) -> None:
    with ctx.sessions.begin() as session:
        session.execute(update(SyncRun).where(SyncRun.id == run_id).values(
            finished_at=utcnow(), outcome=report.outcome, counts=report.counts(),
            error=(report.error or None) and report.error[:1000]))


def _record(ctx: AppContext, audience_id: str, now: datetime, report: SyncReport) -> None:
    run_id = _record_start(ctx, audience_id, now)
    _finish(ctx, run_id, report)
    RUNS.labels(kind="sync", outcome=report.outcome).inc()
