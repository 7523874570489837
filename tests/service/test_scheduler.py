"""The schedule: every job runs the one-shot function, at most one instance at a time,
missed runs coalesce into one, and a run late by less than an interval still happens."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from syncd.clock import utcnow
from syncd.config import Settings
from syncd.context import AppContext
from syncd.service.jobs import JobRunner
from syncd.service.scheduler import build_scheduler
from tests.conftest import make_settings
from tests.service.conftest import wait_until


class CountingJobs:
    """Stands in for JobRunner where the behaviour under test is APScheduler's."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def sync(self) -> None:
        self._count("sync")

    def reconcile(self) -> None:
        self._count("reconcile")

    def inbox_retry(self) -> None:
        self._count("inbox-retry")

    def prune(self) -> None:
        self._count("prune")


@pytest.fixture
def service_settings(tmp_path: object) -> Settings:
    return make_settings("sqlite:///:memory:", sync_interval_minutes=1,
                         reconcile_interval_minutes=2, inbox_retry_interval_minutes=3)


def test_every_job_runs_once_at_a_time_coalesced_with_a_grace_of_one_interval(
        service_settings: Settings) -> None:
    scheduler = build_scheduler(CountingJobs(), service_settings)

    settings_by_job = {job.id: (job.max_instances, job.coalesce, job.misfire_grace_time,
                                job.trigger.interval) for job in scheduler.get_jobs()}

    assert settings_by_job == {
        "sync": (1, True, 60, timedelta(minutes=1)),
        "reconcile": (1, True, 120, timedelta(minutes=2)),
        "inbox-retry": (1, True, 180, timedelta(minutes=3)),
        "prune": (1, True, 86400, timedelta(days=1)),
    }


def test_jobs_call_the_functions_of_the_one_shot_commands(service_settings: Settings) -> None:
    ctx = AppContext.open(service_settings)
    runner = JobRunner(ctx)
    scheduler = build_scheduler(runner, service_settings)

    funcs = {job.id: job.func for job in scheduler.get_jobs()}

    assert funcs == {"sync": runner.sync, "reconcile": runner.reconcile,
                     "inbox-retry": runner.inbox_retry, "prune": runner.prune}
    ctx.close()


def test_sync_runs_at_start_and_prune_a_minute_later(service_settings: Settings) -> None:
    now = utcnow()
    scheduler = build_scheduler(CountingJobs(), service_settings, now=now)

    first = {job.id: job.next_run_time - now for job in scheduler.get_jobs()}

    assert first["sync"] == timedelta(0)
    assert first["prune"] == timedelta(minutes=1)


def test_runs_missed_during_a_sleep_run_once_when_the_scheduler_wakes(
        service_settings: Settings) -> None:
    jobs = CountingJobs()
    # As if the machine slept for 10.5 minutes: ten sync runs and five reconciliations
    # were due meanwhile. Only the latest is within the grace time, and coalescing makes
    # one run of whatever is left.
    scheduler = build_scheduler(jobs, service_settings,
                                now=utcnow() - timedelta(minutes=10, seconds=30))
    scheduler.start()
    try:
        wait_until(lambda: {"sync", "reconcile", "inbox-retry", "prune"} <= set(jobs.calls),
                   10, "every job's first run")
        time.sleep(0.5)  # room for a second call, were the missed runs not coalesced
    finally:
        scheduler.shutdown(wait=True)

    assert jobs.calls == {"sync": 1, "reconcile": 1, "inbox-retry": 1, "prune": 1}


def test_a_slow_run_is_not_stacked_with_the_next(service_settings: Settings) -> None:
    release = threading.Event()
    entered: list[float] = []

    class SlowSync(CountingJobs):
        def sync(self) -> None:
            entered.append(time.monotonic())
            release.wait(10)

    settings = make_settings("sqlite:///:memory:", sync_interval_minutes=0.005)  # 0.3 s
    scheduler = build_scheduler(SlowSync(), settings)
    scheduler.start()
    try:
        time.sleep(1.5)  # five intervals pass while the first run is still going
        assert len(entered) == 1
    finally:
        release.set()
        scheduler.shutdown(wait=True)
