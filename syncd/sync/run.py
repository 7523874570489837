"""`run_sync`: one sync run of one sync target (its audience). The one code path:
`syncd sync [--target NAME]` and the scheduler's job of each target call exactly this.

Flow: single-runner lock (per audience) -> configuration fingerprint (changed: every
contact is planned again) -> the change floor -> safety limit (the target's own: planned
unsubscribes vs members known live) -> ESP check -> stream the contacts changed since the
last complete run (syncd.store.candidates) in chunks -> plan -> write-ahead attempt
markers -> ESP calls in parallel (bounded) -> checkpoint from the ESP's answers only
(I8) -> record the run -> a complete run stores its change cursor."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from syncd.clock import utcnow
from syncd.config.targets import TargetSettings
from syncd.context import AppContext
from syncd.esp import target_fields
from syncd.esp.errors import EspError
from syncd.esp.protocol import EspWriter
from syncd.logs import get_logger
from syncd.metrics import (
    HELD_UNSUBSCRIBES,
    LAST_SUCCESS,
    RUNS,
    TARGET_LAST_SUCCESS,
    TARGET_RUNS,
)
from syncd.runner_lock import single_runner
from syncd.schema import PushOutcome, RunKind, RunOutcome
from syncd.store import candidates, push_state, runs
from syncd.sync import audience_pull, source, target_config
from syncd.sync.held import refusal_message
from syncd.sync.pipeline import Pipeline
from syncd.sync.plan import LIVE, Action, Change, PlanConfig, plan_contact
from syncd.sync.sync_report import SyncReport, Tally

log = get_logger(__name__)
READ_CHUNK = 2000


@dataclass(frozen=True)
class _Run:
    """What every step of one run shares."""

    ctx: AppContext
    target: TargetSettings
    audience_id: str
    cfg: PlanConfig
    now: datetime
    started: float
    planned_unsubscribes: int
    known_members: int
    unsubscribe_limit: int
    changed: candidates.Changes  # what the run reads
    hold_unsubscribes: bool = False
    config_print: str = ""
    replanned: str | None = None  # why everyone is planned (sync_report.SyncReport)

    @property
    def safety(self) -> dict[str, Any]:
        return {"target": self.target.name, "replanned": self.replanned,
                "planned_unsubscribes": self.planned_unsubscribes,
                "known_members": self.known_members,
                "unsubscribe_limit": self.unsubscribe_limit}

    @property
    def everyone(self) -> bool:
        return self.replanned is not None

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _candidates(ctx: AppContext, audience_id: str, cfg: PlanConfig,
                changed: candidates.Changes, *, live_only: bool = False
                ) -> Iterable[list[source.Candidate]]:
    return source.iter_candidates(ctx.engine, audience_id, ctx.keyring, chunk_size=READ_CHUNK,
                                  purpose_lists=cfg.tag_lists, live_only=live_only,
                                  pulled_at=audience_pull.pulled_at(ctx, audience_id),
                                  everyone=changed.everyone, ids=changed.ids,
                                  purchases=cfg.basis == "soft_opt_in")


def _safety(ctx: AppContext, target: TargetSettings, cfg: PlanConfig,
            now: datetime, changed: candidates.Changes) -> tuple[int, int, int]:
    """(planned unsubscribes, members known live, limit). Only contacts known live can be
    unsubscribed, so the pre-count reads just those among the changed contacts."""
    audience_id = target.audience_id
    planned = sum(
        plan_contact(c.facts, c.known, cfg, now).action is Action.UNSUBSCRIBE
        for chunk in _candidates(ctx, audience_id, cfg, changed, live_only=True)
        for c in chunk)
    # Above the floor AND above the share: a handful of withdrawals never waits on the
    # size of the audience (I11). The target's own limit. Within the floor nothing can
    # be held: the members are not counted (0), so a quiet run reads only its cursor.
    known = (push_state.count_live(ctx.engine, audience_id, tuple(LIVE))
             if planned > target.unsubscribe_floor else 0)
    limit = max(target.unsubscribe_floor, int(known * target.max_unsubscribe_share))
    return planned, known, limit


def run_sync(ctx: AppContext, *, target: TargetSettings | None = None,
             dry_run: bool = False, force: bool = False, full: bool = False,
             stop: threading.Event | None = None,
             progress: Callable[[int, int], None] | None = None) -> SyncReport:
    """Bring the target's audience (None: the only target) in line with the CRM for the
    contacts that changed; every contact when `full` or the target's configuration
    changed since its last sync.

    Raises RunnerBusy (another run holds the lock), ConfigError, and EspError for
    run-level failures (bad key, unknown audience, ESP unavailable after retries), after
    recording the failed run. Returns the report otherwise (refused and interrupted
    runs included)."""
    if target is None:
        target = ctx.settings.target()
    audience_id = target.audience_id
    with single_runner(ctx.engine, f"sync:{audience_id}"):
        if dry_run:
            # The real run's GETs of groups and GDPR fields: it plans what it would send.
            run = _prepare(ctx, target, force, full, time.monotonic())
            report = _dry_run(replace(run, cfg=_with_fields(
                run.cfg, target_fields.read_live(ctx.settings, target))))
        else:
            from syncd.esp.mailchimp import mailchimp_client

            started = time.monotonic()
            client = mailchimp_client(ctx.settings, audience_id)
            try:
                pulled = False
                if not audience_pull.was_pulled(ctx, audience_id):
                    # The first sync of an audience: learn the members that were there
                    # before syncd, so that a withdrawal reaches them too (rule 12, I11).
                    audience_pull.pull_locked(ctx, client, audience_id, stop=stop)
                    pulled = True
                run = _prepare(ctx, target, force, full, started)
                run = replace(run, cfg=_with_fields(run.cfg,
                                                    target_fields.read(client, target)))
                with ctx.sessions.begin() as session:
                    run_id = runs.start(session, kind=RunKind.SYNC, audience_id=audience_id,
                                        started_at=run.now)
                writes_before = client.write_calls
                report = _push(run, client, run_id, stop=stop, progress=progress,
                               audience_pulled=pulled,
                               write_calls=lambda: client.write_calls - writes_before)
                if report.outcome in (RunOutcome.SUCCEEDED, RunOutcome.REFUSED):
                    # Everyone was planned under this configuration: the next run compares
                    # against it (a failed or interrupted run re-plans everyone again).
                    target_config.record(ctx, audience_id, run.config_print)
                    with ctx.sessions.begin() as session:
                        candidates.complete(session, audience_id, run.changed)
            finally:
                client.close()
    HELD_UNSUBSCRIBES.labels(audience=audience_id).set(report.held_unsubscribes)
    if report.held_unsubscribes:
        log.error("sync_unsubscribes_held", **report.counts())
    return report


def _prepare(ctx: AppContext, target: TargetSettings, force: bool, full: bool,
             started: float) -> _Run:
    """The plan's settings and the safety limit's numbers, read once per run."""
    now = utcnow()
    cfg = PlanConfig.for_target(target, ctx.settings)
    config_print = target_config.fingerprint(target, cfg)
    replanned = ("full" if full else "configuration changed"
                 if target_config.changed(ctx, target.audience_id, config_print) else None)
    if replanned:
        log.info("sync_replans_target", target=target.name, why=replanned)
    with ctx.sessions.begin() as session:  # before any read (syncd.store.candidates)
        changed = candidates.changes(session, target.audience_id, everyone=bool(replanned))
    planned_unsubs, known, limit = _safety(ctx, target, cfg, now, changed)
    return _Run(ctx, target, target.audience_id, cfg, now, started, planned_unsubs, known,
                limit, changed, hold_unsubscribes=planned_unsubs > limit and not force,
                config_print=config_print, replanned=replanned)


def _with_fields(cfg: PlanConfig, fields: target_fields.TargetFields) -> PlanConfig:
    """The target's groups and GDPR fields resolved to the audience's ids."""
    return replace(cfg, interests=fields.interests, permissions=fields.permissions)


def _refused(run: _Run) -> str:
    return refusal_message(run.planned_unsubscribes, run.known_members, run.target,
                           run.ctx.settings)


def _dry_run(run: _Run) -> SyncReport:
    """Plans everything, writes nothing: no push_state, no sync_runs, no ESP write."""
    refused = run.hold_unsubscribes
    tally = Tally()
    for chunk in _candidates(run.ctx, run.audience_id, run.cfg, run.changed):
        for cand in chunk:
            tally.planned(plan_contact(cand.facts, cand.known, run.cfg, run.now),
                          cand.facts.email, dry_run=True)
    return tally.report(RunOutcome.REFUSED if refused else RunOutcome.DRY_RUN,
                        run.audience_id, dry_run=True,
                        duration_seconds=run.elapsed(), **run.safety,
                        error=(_refused(run) if refused else None))


def _push(run: _Run, esp: EspWriter, run_id: int, *, stop: threading.Event | None,
          progress: Callable[[int, int], None] | None, audience_pulled: bool,
          write_calls: Callable[[], int]) -> SyncReport:
    ctx, audience_id, now = run.ctx, run.audience_id, run.now
    tally = Tally()
    try:
        esp.ping()
    except EspError as exc:
        _fail(run, run_id, tally, str(exc))
        raise
    total = (candidates.count(ctx.engine, audience_id, everyone=run.everyone,
                              ids=run.changed.ids) if progress else 0)
    pipeline = Pipeline(ctx, esp, audience_id, tally, now)
    try:
        interrupted = _stream(run, pipeline, tally, stop=stop, progress=progress, total=total)
    except Exception as exc:
        # A bug or a database failure: the run is recorded as failed, then it surfaces.
        _fail(run, run_id, tally, f"sync failed: {type(exc).__name__}")
        raise
    if progress:
        progress(pipeline.done, max(total, pipeline.done))
    if pipeline.abort is not None:
        _fail(run, run_id, tally, str(pipeline.abort), write_calls=write_calls())
        raise pipeline.abort
    held = tally.kinds[PushOutcome.HELD]
    outcome = (RunOutcome.INTERRUPTED if interrupted
               else RunOutcome.REFUSED if held else RunOutcome.SUCCEEDED)
    report = tally.report(outcome, audience_id, duration_seconds=run.elapsed(),
                          write_calls=write_calls(), held_unsubscribes=held,
                          audience_pulled=audience_pulled,
                          error=_refused(run) if held else None,
                          **run.safety)
    _finish(ctx, run_id, report)
    tally.publish()
    RUNS.labels(kind=RunKind.SYNC, outcome=outcome).inc()
    TARGET_RUNS.labels(target=run.target.name, outcome=outcome).inc()
    if outcome == RunOutcome.SUCCEEDED:
        LAST_SUCCESS.labels(kind=RunKind.SYNC).set(time.time())
        TARGET_LAST_SUCCESS.labels(target=run.target.name).set(time.time())
    return report


def _stream(run: _Run, pipeline: Pipeline, tally: Tally, *, stop: threading.Event | None,
            progress: Callable[[int, int], None] | None, total: int) -> bool:
    """Plan and push chunk by chunk; True if stopped early (graceful shutdown)."""
    interrupted = False
    try:
        for chunk in _candidates(run.ctx, run.audience_id, run.cfg, run.changed):
            if stop is not None and stop.is_set():
                interrupted = True
                break
            for cand in chunk:
                change = plan_contact(cand.facts, cand.known, run.cfg, run.now)
                if change.action is Action.UNSUBSCRIBE and run.hold_unsubscribes:
                    change = _held(change)
                    tally.kinds[PushOutcome.HELD] += 1
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


def _fail(run: _Run, run_id: int, tally: Tally, error: str, write_calls: int = 0) -> None:
    """Record the run as failed: an ESP refusal, or a bug or database failure by name."""
    report = tally.report(RunOutcome.FAILED, run.audience_id, duration_seconds=run.elapsed(),
                          error=error, write_calls=write_calls, **run.safety)
    _finish(run.ctx, run_id, report)
    tally.publish()
    RUNS.labels(kind=RunKind.SYNC, outcome=RunOutcome.FAILED).inc()
    TARGET_RUNS.labels(target=run.target.name, outcome=RunOutcome.FAILED).inc()
    log.error("sync_failed", **report.counts())


def _finish(ctx: AppContext, run_id: int, report: SyncReport) -> None:
    with ctx.sessions.begin() as session:
        runs.finish(session, run_id, outcome=report.outcome, counts=report.counts(),
                    error=report.error)
