"""`syncd serve` as a command: where it listens, what it refuses at start, and the bound
on a graceful stop."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.exit_codes import ExitCode
from tests.conftest import TEST_AUDIENCE_ID
from tests.service.conftest import (
    ServeProcess,
    free_port,
    log_records,
    seed_confirmed,
    service_env,
    wait_until,
)


def test_serve_listens_where_the_settings_say(
        database_url: str, serve_process: Callable[..., ServeProcess]) -> None:
    port = free_port()
    server = serve_process(service_env(database_url, "http://127.0.0.1:9/3.0",
                                       http_host="127.0.0.1", http_port=port),
                           port=port, options=False)

    server.wait_ready()

    assert server.stop() == 0


def test_serve_without_mailchimp_settings_refuses_to_start_and_names_them(
        database_url: str, serve_process: Callable[..., ServeProcess]) -> None:
    env = service_env(database_url, "http://127.0.0.1:9/3.0")
    del env["SYNCD_MAILCHIMP_API_KEY"]
    server = serve_process(env)

    code = server.proc.wait(timeout=60)
    server.stop()

    assert code == ExitCode.CONFIG
    assert "SYNCD_MAILCHIMP_API_KEY" in server.log_text()


def test_serve_exits_failed_when_its_port_is_taken(
        database_url: str, serve_process: Callable[..., ServeProcess]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = serve_process(service_env(database_url, "http://127.0.0.1:9/3.0"),
                               port=taken.getsockname()[1])
        code = server.proc.wait(timeout=60)
    server.stop()

    assert code == ExitCode.FAILED
    assert any(r["event"] == "HTTP server did not start" for r in log_records(server.lines))


@pytest.mark.slow
def test_a_run_stuck_past_the_shutdown_bound_does_not_hold_the_stop(
        app_context: AppContext, database_url: str,
        serve_process: Callable[..., ServeProcess]) -> None:
    seed_confirmed(app_context, 20)
    with MailchimpEmulator(list_id=TEST_AUDIENCE_ID) as emu:
        emu.set_latency(20_000)  # every call hangs far past the bound
        server = serve_process(service_env(database_url, emu.base_url,
                                           shutdown_timeout_seconds=1,
                                           mailchimp_timeout_seconds=60))
        wait_until(lambda: emu.stats.in_flight > 0, 30, "a call in flight")

        server.signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = server.stop(timeout=30)
        stop_seconds = time.monotonic() - signalled
        still_in_flight = emu.stats.in_flight  # the hanging call was not waited for

    print(f"stopped {stop_seconds:.1f} s after SIGTERM with a bound of 1 s")
    assert code == ExitCode.FAILED
    assert still_in_flight > 0
    assert any(r["event"].startswith("shutdown bound reached")
               for r in log_records(server.lines))
