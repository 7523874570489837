"""When the service's jobs run: an APScheduler 3 BackgroundScheduler, in memory.

No persistent job store: the schedule is configuration, and the single-runner lock (I7),
not the scheduler, keeps replicas from running the same job at once. Every job has
`max_instances=1` (a slow run is never stacked with the next in one process),
`coalesce=True` (after a suspend or a long pause, the missed runs collapse into one) and a
`misfire_grace_time` of one interval (a run late by less than that still happens once).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from syncd.clock import utcnow
from syncd.config import Settings
from syncd.service.jobs import INBOX_RETRY, OUTBOX, PRUNE, RECONCILE, SYNC

PRUNE_INTERVAL = timedelta(days=1)
# The first prune waits a little: a crash-looping service should not prune in a loop.
PRUNE_FIRST_DELAY = timedelta(minutes=1)


class Jobs(Protocol):
    def sync(self, target: str | None = None) -> None: ...
    def reconcile(self, target: str | None = None) -> None: ...
    def inbox_retry(self) -> None: ...
    def prune(self) -> None: ...
    def outbox(self) -> None: ...


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    func: Callable[[], None]
    interval: timedelta
    first_run: datetime


def job_specs(jobs: Jobs, settings: Settings, *, now: datetime | None = None) -> list[JobSpec]:
    start = now or utcnow()
    reconcile_every = timedelta(minutes=settings.reconcile_interval_minutes)
    specs = [JobSpec(INBOX_RETRY, jobs.inbox_retry,
                     timedelta(minutes=settings.inbox_retry_interval_minutes), start)]
    targets = settings.sync_targets
    for target in targets:
        # One sync and one reconciliation per target, each on its own interval and lock;
        # the one target of the single-audience settings keeps the plain job ids.
        alone = len(targets) == 1
        sync_every = timedelta(minutes=target.interval_minutes)
        sync_job: Callable[[], None] = jobs.sync if alone else partial(jobs.sync, target.name)
        reconcile_job: Callable[[], None] = (jobs.reconcile if alone
                                             else partial(jobs.reconcile, target.name))
        suffix = "" if alone else f":{target.name}"
        # A start-up sync catches up at once (a restart should not wait a whole interval);
        # reconciliation after the first sync has had its turn at the lock.
        specs += [JobSpec(SYNC + suffix, sync_job, sync_every, start),
                  JobSpec(RECONCILE + suffix, reconcile_job, reconcile_every,
                          start + min(reconcile_every, sync_every) / 2)]
    specs.append(JobSpec(PRUNE, jobs.prune, PRUNE_INTERVAL, start + PRUNE_FIRST_DELAY))
    if settings.smtp_host and settings.mail_from and settings.public_base_url:
        # The sign-up outbox: mails queued by the HTTP side, sent here (never in a request).
        specs.append(JobSpec(OUTBOX, jobs.outbox,
                             timedelta(seconds=settings.outbox_interval_seconds), start))
    return specs


def build_scheduler(jobs: Jobs, settings: Settings, *,
                    now: datetime | None = None) -> BackgroundScheduler:
    """The scheduler with every job added, not started."""
    scheduler = BackgroundScheduler(
        timezone="UTC",
        # One thread per job kind: a long sync never delays the inbox retry.
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"max_instances": 1, "coalesce": True},
    )
    for spec in job_specs(jobs, settings, now=now):
        scheduler.add_job(spec.func, trigger=IntervalTrigger(seconds=spec.interval.total_seconds(),
                                                             timezone="UTC"),
                          id=spec.job_id, name=spec.job_id, next_run_time=spec.first_run,
                          **job_options(spec.interval))
    return scheduler


def job_options(interval: timedelta) -> dict[str, Any]:
    return {
        "max_instances": 1,
        "coalesce": True,
        # A run late by up to one interval still happens (once, coalesced); a later
        # one would come no sooner than the next regular run anyway.
        "misfire_grace_time": max(1, math.ceil(interval.total_seconds())),
        "replace_existing": True,
    }
