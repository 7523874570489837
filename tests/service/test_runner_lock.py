"""I7, one runner: the lock refuses a second holder at once, survives an idle database
session limit, is freed by the holder's death (kill -9), and a lost lock connection
never hides how the run ended."""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import Engine, create_engine, event, text
from structlog.testing import capture_logs

from syncd.db import make_engine
from syncd.runner_lock import RunnerBusy, single_runner
from tests.service.conftest import REPO, BlockablePostgres, wait_until

HOLD_SCRIPT = """
import sys, time
from syncd.db import make_engine
from syncd.runner_lock import single_runner
with single_runner(make_engine(sys.argv[1]), "sync:test"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_second_holder_is_refused_while_the_first_still_holds(database_url: str) -> None:
    # Same thread: an attempt queued behind the holder could never return, as the holder
    # only lets go after it.
    engine = make_engine(database_url)
    with single_runner(engine, "sync:a"), \
            pytest.raises(RunnerBusy, match="another sync run is in progress"), \
            single_runner(engine, "sync:a"):
        pass
    engine.dispose()


def test_the_lock_is_only_ever_tried_never_waited_for(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # "Refused at once" as the work done, not as a stopwatch: PostgreSQL is asked with
    # pg_try_advisory_lock (never the blocking pg_advisory_lock), flock with LOCK_NB.
    statements: list[str] = []
    flock_flags: list[int] = []
    real_flock = fcntl.flock

    def record_statement(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    def spied_flock(fd: int, flags: int) -> None:
        flock_flags.append(flags)
        real_flock(fd, flags)

    monkeypatch.setattr(fcntl, "flock", spied_flock)
    event.listen(Engine, "before_cursor_execute", record_statement)
    engine = make_engine(database_url)
    try:
        with single_runner(engine, "sync:a"), pytest.raises(RunnerBusy), \
                single_runner(engine, "sync:a"):
            pass
    finally:
        event.remove(Engine, "before_cursor_execute", record_statement)
        engine.dispose()

    if engine.dialect.name == "postgresql":
        tries = [s for s in statements if "advisory" in s and "unlock" not in s]
        assert tries == ["SELECT pg_try_advisory_lock(%(key)s)"] * 2
    else:
        takes = [f for f in flock_flags if f & fcntl.LOCK_EX]
        assert takes == [fcntl.LOCK_EX | fcntl.LOCK_NB] * 2


def test_different_names_do_not_exclude_each_other(database_url: str) -> None:
    engine = make_engine(database_url)
    with single_runner(engine, "sync:a"), single_runner(engine, "sync:b"):
        pass
    engine.dispose()


def test_lock_is_free_again_after_the_block(database_url: str) -> None:
    engine = make_engine(database_url)
    with single_runner(engine, "sync:a"):
        pass
    with single_runner(engine, "sync:a"):
        pass
    engine.dispose()


@pytest.mark.slow
def test_kill_9_of_the_holder_frees_the_lock(database_url: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, database_url], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"held"
        engine = make_engine(database_url)
        with pytest.raises(RunnerBusy), single_runner(engine, "sync:test"):
            pass

        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)

        def free() -> bool:
            try:
                with single_runner(engine, "sync:test"):
                    return True
            except RunnerBusy:
                return False

        wait_until(free, 10, "the lock of a killed holder to be freed")
        engine.dispose()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_lock_survives_an_idle_session_timeout_of_the_database(
        blockable_postgres: BlockablePostgres) -> None:
    admin = create_engine(blockable_postgres.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{blockable_postgres.name}" '
                          "SET idle_session_timeout = '300ms'"))
    admin.dispose()
    engine = make_engine(blockable_postgres.url)
    with single_runner(engine, "sync:a"):
        time.sleep(1.0)  # the lock session sits idle for the run, past the limit
        with pytest.raises(RunnerBusy), single_runner(engine, "sync:a"):
            pass
    engine.dispose()


def test_holder_is_named_in_pg_stat_activity(blockable_postgres: BlockablePostgres) -> None:
    engine = make_engine(blockable_postgres.url)
    with single_runner(engine, "sync:a"), engine.connect() as conn:
        names = set(conn.scalars(text(
            "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()")))
    assert "syncd lock sync:a" in names
    engine.dispose()


def test_lost_lock_connection_is_logged_and_does_not_mask_the_run(
        blockable_postgres: BlockablePostgres) -> None:
    engine = make_engine(blockable_postgres.url)
    with capture_logs() as logs, single_runner(engine, "sync:a"), engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'syncd lock sync:a' "
                          "AND datname = current_database()"))
        conn.commit()
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "runner lock connection lost during the run"]
    engine.dispose()
