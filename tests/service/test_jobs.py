"""The job wrapper: a busy lock is one log line, a failure never escapes into the
scheduler, every run ends with one summary line, nothing starts after shutdown began."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from mailchimp_emulator import MailchimpEmulator
from syncd import logs
from syncd.context import AppContext
from syncd.runner_lock import single_runner
from syncd.service.jobs import BUSY_MESSAGE, JobRunner, summarise
from syncd.sync.run import run_sync
from tests.builders import add_contact, confirmed
from tests.conftest import emulated_settings


@dataclass
class FakeReport:
    outcome: str
    pushed: int
    parked: int
    reasons: dict[str, int]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_run_that_finds_the_lock_held_logs_one_line_and_returns(
        app_context: AppContext) -> None:
    runner = JobRunner(app_context)

    def locked_run() -> None:
        with single_runner(app_context.engine, "sync:test"):
            raise AssertionError("the lock is held by the test: this must not run")

    with single_runner(app_context.engine, "sync:test"), capture_logs() as captured:
        runner.run("sync", locked_run)

    assert [(e["event"], e["kind"]) for e in captured] == [(BUSY_MESSAGE, "sync")]


def _broken() -> None:
    raise RuntimeError("could not push ann.example@example.org")


def test_a_failing_run_is_logged_and_not_raised(app_context: AppContext) -> None:
    runner = JobRunner(app_context)

    with capture_logs() as captured:
        runner.run("sync", _broken)

    (line,) = captured
    assert (line["event"], line["outcome"], line["log_level"]) == ("run finished", "failed",
                                                                   "error")
    assert runner.running() == []


def test_a_failing_run_logs_a_pseudonym_not_the_address(app_context: AppContext) -> None:
    sink = io.StringIO()
    logs.configure(fmt="json", keyring=app_context.keyring, stream=sink)
    runner = JobRunner(app_context)

    runner.run("sync", _broken)

    (line,) = [json.loads(raw) for raw in sink.getvalue().splitlines()]
    pseudonym = app_context.keyring.pseudonym("ann.example@example.org")
    assert line["error"] == f"RuntimeError: could not push {pseudonym}"
    assert "example.org" not in sink.getvalue()


def test_every_run_ends_with_one_summary_line(app_context: AppContext) -> None:
    runner = JobRunner(app_context)

    with capture_logs() as captured:
        runner.run("sync", lambda: FakeReport("partial", 10, 2, {"invalid_address": 2}))

    (line,) = captured
    assert (line["event"], line["kind"], line["outcome"], line["counts"]) == (
        "run finished", "sync", "partial",
        {"pushed": 10, "parked": 2, "reasons": {"invalid_address": 2}})
    assert line["duration_s"] >= 0


def test_no_run_starts_once_shutdown_began(app_context: AppContext) -> None:
    runner = JobRunner(app_context)
    runner.stop.set()
    calls: list[int] = []

    runner.run("sync", lambda: calls.append(1))

    assert calls == []


def test_run_outcomes_are_counted(app_context: AppContext) -> None:
    runner = JobRunner(app_context)
    before = _sample("syncd_scheduler_jobs_total", job="prune", outcome="succeeded")

    runner.run("prune", lambda: {"webhook_bodies_nulled": 0})

    assert _sample("syncd_scheduler_jobs_total", job="prune", outcome="succeeded") == before + 1


@pytest.mark.parametrize(("result", "expected"), [
    (None, ("succeeded", {})),
    ({"retried": 3}, ("succeeded", {"retried": 3})),
    (FakeReport("failed", 0, 0, {}), ("failed", {"pushed": 0, "parked": 0, "reasons": {}})),
])
def test_summary_reads_reports_and_dicts(result: object,
                                         expected: tuple[str, dict[str, object]]) -> None:
    assert summarise(result) == expected


def test_a_real_sync_under_the_service_is_summarised_once(
        database_url: str, emulator: MailchimpEmulator) -> None:
    ctx = AppContext.open(emulated_settings(database_url, emulator))
    ctx.sync_lists()
    add_contact(ctx, "ann.example@example.org", events=confirmed())
    runner = JobRunner(ctx)

    with capture_logs() as captured:
        runner.run("sync", lambda: run_sync(ctx))
    ctx.close()

    summaries = [r for r in captured if r["event"] in ("run finished", "sync_run")]
    assert [(r["event"], r["kind"], r["outcome"]) for r in summaries] == [
        ("run finished", "sync", "succeeded")]
    assert summaries[0]["counts"]["added"] == 1
