"""I7 across processes: two `syncd serve` replicas on one PostgreSQL and a one-shot
`syncd sync` in a loop never run a sync at the same time; the one-shot command says so and
exits BUSY; killing the holder with SIGKILL lets another replica take over."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from sqlalchemy import select

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.db import make_engine, transaction
from syncd.exit_codes import ExitCode
from syncd.runner_lock import single_runner
from syncd.schema import SyncRun
from tests.conftest import TEST_AUDIENCE_ID, _empty_postgres, make_settings
from tests.service.conftest import (
    REPO,
    ServeProcess,
    log_records,
    seed_confirmed,
    service_env,
    syncd_env,
    wait_until,
)

BUSY_LINE = "skipped: another runner holds the lock"


@pytest.fixture
def emulator() -> Iterator[MailchimpEmulator]:
    with MailchimpEmulator(list_id=TEST_AUDIENCE_ID) as emu:
        yield emu


def _sync_runs(ctx: AppContext) -> list[tuple[datetime, datetime | None, str]]:
    with transaction(ctx.sessions) as session:
        return [(r.started_at, r.finished_at, r.outcome) for r in session.scalars(
            select(SyncRun).where(SyncRun.kind == "sync").order_by(SyncRun.started_at))]


def _one_shot_sync(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syncd", "sync"], cwd=REPO,
                          env=syncd_env(env), capture_output=True, text=True, timeout=60,
                          check=False)


def test_one_shot_sync_says_busy_and_exits_busy_while_a_run_holds_the_lock(
        database_url: str, emulator: MailchimpEmulator) -> None:
    engine = make_engine(database_url)
    with single_runner(engine, f"sync:{TEST_AUDIENCE_ID}"):
        result = _one_shot_sync(service_env(database_url, emulator.base_url))
    engine.dispose()

    assert result.returncode == ExitCode.BUSY, result.stderr
    assert "another sync run is in progress" in result.stderr
    assert emulator.stats.write_calls == 0


@pytest.fixture
def postgres_context(postgres_database: str) -> Iterator[AppContext]:
    """Replicas share one PostgreSQL (SQLite is one machine by nature)."""
    _empty_postgres(postgres_database)
    ctx = AppContext.open(make_settings(postgres_database))
    ctx.sync_lists()
    yield ctx
    ctx.close()


@pytest.mark.slow
def test_two_replicas_and_a_one_shot_loop_never_overlap_sync_runs(
        postgres_context: AppContext, postgres_database: str, emulator: MailchimpEmulator,
        serve_process: Callable[..., ServeProcess]) -> None:
    app_context, database_url = postgres_context, postgres_database
    seed_confirmed(app_context, 300)
    emulator.set_latency(150)  # every run lasts a while: its ping alone takes 150 ms
    env = service_env(database_url, emulator.base_url, sync_interval_minutes=0.02,
                      mailchimp_batch_size=10)
    replicas = [serve_process(env), serve_process(env)]
    for replica in replicas:
        replica.wait_ready()

    one_shot_codes = []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        result = _one_shot_sync(env)
        assert result.returncode in (ExitCode.OK, ExitCode.BUSY), result.stderr[-3000:]
        one_shot_codes.append(result.returncode)
    for replica in replicas:
        assert replica.stop() == 0, replica.log_text()[-3000:]

    runs = _sync_runs(app_context)
    overlaps = [(a, b) for a, b in itertools.pairwise(runs) if a[1] is None or a[1] > b[0]]
    busy_in_replicas = sum(r["event"] == BUSY_LINE for replica in replicas
                           for r in log_records(replica.lines))
    print(f"{len(runs)} sync runs, one-shot exit codes {one_shot_codes}, "
          f"{busy_in_replicas} busy skips in the replicas")
    assert overlaps == []
    assert len(runs) >= 5
    assert set(one_shot_codes) <= {ExitCode.OK, ExitCode.BUSY}
    assert busy_in_replicas + one_shot_codes.count(ExitCode.BUSY) > 0  # contention happened
    assert len(emulator.members("subscribed")) == 300


@pytest.mark.slow
def test_kill_9_of_the_running_replica_lets_another_take_over(
        app_context: AppContext, database_url: str, emulator: MailchimpEmulator,
        serve_process: Callable[..., ServeProcess]) -> None:
    emails = seed_confirmed(app_context, 1000)  # 100 batch calls; 20 in flight at the kill
    # Hold the first replica's batch calls at Mailchimp's door: it is mid-run, holding the
    # lock, for as long as the test needs.
    entered, gate = threading.Event(), threading.Event()

    def hold(_request: object) -> None:
        entered.set()
        gate.wait(30)

    emulator.set_hook(hold, match=r"^POST /3\.0/lists/[^/]+$")
    env = service_env(database_url, emulator.base_url, sync_interval_minutes=0.02,
                      mailchimp_batch_size=10, mailchimp_timeout_seconds=60)
    holder = serve_process(env)
    assert entered.wait(30), "the first replica never pushed"
    standby = serve_process(env)
    try:
        wait_until(lambda: any(BUSY_LINE in line for line in standby.lines), 30,
                   "the second replica to find the lock held")
    except AssertionError:
        raise AssertionError("standby:\n" + standby.log_text()[-3000:]
                             + "\nholder:\n" + holder.log_text()[-3000:]) from None

    holder.signal(signal.SIGKILL)
    holder.proc.wait(timeout=10)
    killed_at = time.monotonic()
    emulator.clear_faults()
    gate.set()
    wait_until(lambda: "succeeded" in [o for _, _, o in _sync_runs(app_context)], 60,
               "the second replica to complete a sync")
    takeover_seconds = time.monotonic() - killed_at

    outcomes = [outcome for _, _, outcome in _sync_runs(app_context)]
    print(f"takeover and the rest of the push took {takeover_seconds:.1f} s")
    assert outcomes[0] == "running"  # the killed run: it never finished
    assert "succeeded" in outcomes[1:]
    assert {m["email_address"] for m in emulator.members("subscribed")} == set(emails)
    assert standby.stop() == 0
