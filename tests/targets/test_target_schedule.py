"""`syncd serve` schedules every target: a sync and a reconciliation job per target, each
on the target's own interval, each calling the one-shot function for that target; the
single-audience settings keep the plain job ids."""

from __future__ import annotations

from datetime import timedelta

from syncd.config import Settings
from syncd.service.scheduler import job_specs
from tests.conftest import TEST_AUDIENCE_ID, TEST_LISTS
from tests.targets.conftest import NEWSLETTER, OFFERS


class NamedJobs:
    """Records which target each job was called for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def sync(self, target: str | None = None) -> None:
        self.calls.append(("sync", target))

    def reconcile(self, target: str | None = None) -> None:
        self.calls.append(("reconcile", target))

    def inbox_retry(self) -> None: ...
    def prune(self) -> None: ...
    def outbox(self) -> None: ...


def test_every_target_has_its_own_sync_and_reconcile_job_on_its_own_interval() -> None:
    hourly = OFFERS.model_copy(update={"interval_minutes": 60})
    settings = Settings(lists=TEST_LISTS, targets=[NEWSLETTER, hourly])
    jobs = NamedJobs()

    specs = {spec.job_id: spec for spec in job_specs(jobs, settings)}
    for job_id in ("sync:newsletter", "sync:offers", "reconcile:offers"):
        specs[job_id].func()

    assert specs["sync:newsletter"].interval == timedelta(minutes=15)
    assert specs["sync:offers"].interval == timedelta(minutes=60)
    assert jobs.calls == [("sync", "newsletter"), ("sync", "offers"),
                          ("reconcile", "offers")]


def test_the_single_audience_settings_keep_the_plain_job_ids() -> None:
    settings = Settings(lists=TEST_LISTS, mailchimp_audience_id=TEST_AUDIENCE_ID,
                        sync_interval_minutes=5)

    specs = {spec.job_id: spec for spec in job_specs(NamedJobs(), settings)}

    assert {"sync", "reconcile"} <= set(specs)
    assert specs["sync"].interval == timedelta(minutes=5)
