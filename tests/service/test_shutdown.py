"""Graceful shutdown of a real `syncd serve`: SIGTERM in the middle of a sync run stops
before the next chunk, finishes and checkpoints what is in flight, exits 0; the
checkpoint then matches Mailchimp exactly and a re-run converges (I8)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from mailchimp_emulator import DEFAULT_API_KEY, MailchimpEmulator
from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import PushState
from syncd.sync.run import READ_CHUNK, run_sync
from tests.builders import runs
from tests.conftest import TEST_AUDIENCE_ID, make_settings
from tests.service.conftest import (
    ServeProcess,
    log_records,
    seed_confirmed,
    service_env,
    wait_until,
)

# More than one read chunk: the sync looks at the stop event between chunks.
CONTACTS = READ_CHUNK + READ_CHUNK // 2
# A hundred batch calls or more per chunk, ten at a time: the first chunk takes ten round
# trips or more, so the signal lands well before the second chunk is read.
BATCH = max(1, READ_CHUNK // 100)


@pytest.fixture
def slow_emulator() -> Iterator[MailchimpEmulator]:
    with MailchimpEmulator(list_id=TEST_AUDIENCE_ID, latency_ms=100) as emu:
        yield emu


def _settled_addresses(ctx: AppContext) -> set[str]:
    with transaction(ctx.sessions) as session:
        return set(session.scalars(
            select(PushState.esp_email).where(PushState.esp_status == "subscribed")))


@pytest.mark.slow
def test_sigterm_mid_run_checkpoints_what_mailchimp_confirmed_and_a_rerun_converges(
        app_context: AppContext, database_url: str, slow_emulator: MailchimpEmulator,
        serve_process: Callable[..., ServeProcess]) -> None:
    emails = seed_confirmed(app_context, CONTACTS)
    server = serve_process(service_env(database_url, slow_emulator.base_url,
                                       mailchimp_batch_size=BATCH))
    wait_until(lambda: len(slow_emulator.members()) > 0, 30, "the first pushed members")

    server.signal(signal.SIGTERM)
    signalled = time.monotonic()
    code = server.stop(timeout=40)
    shutdown_seconds = time.monotonic() - signalled

    records = log_records(server.lines)
    assert code == 0, server.log_text()[-3000:]
    # The first sync read the (empty) audience first, then was interrupted mid-push.
    assert runs(app_context) == [("audience_pull", "succeeded"), ("sync", "interrupted")]
    at_mailchimp = {m["email_address"] for m in slow_emulator.members("subscribed")}
    assert 0 < len(at_mailchimp) < CONTACTS
    assert _settled_addresses(app_context) == at_mailchimp  # nothing pushed unrecorded
    assert any(r["event"] == "shutdown requested: no new runs; finishing the current batch"
               for r in records)
    print(f"shutdown took {shutdown_seconds:.2f} s with {len(at_mailchimp)} of {CONTACTS} "
          "pushed")

    slow_emulator.set_latency(0)
    one_shot = AppContext.open(make_settings(database_url, mailchimp_api_key=DEFAULT_API_KEY,
                                             mailchimp_base_url=slow_emulator.base_url))
    rerun = run_sync(one_shot)
    again = run_sync(one_shot)
    one_shot.close()

    assert rerun.outcome == "succeeded"
    assert {m["email_address"] for m in slow_emulator.members("subscribed")} == set(emails)
    assert _settled_addresses(app_context) == set(emails)
    assert again.write_calls == 0


@pytest.mark.slow
def test_a_second_signal_exits_at_once(
        app_context: AppContext, database_url: str, slow_emulator: MailchimpEmulator,
        serve_process: Callable[..., ServeProcess]) -> None:
    seed_confirmed(app_context, 200)
    slow_emulator.set_latency(5000)
    server = serve_process(service_env(database_url, slow_emulator.base_url,
                                       mailchimp_batch_size=10))
    wait_until(lambda: slow_emulator.stats.in_flight > 0, 30, "a push in flight")

    server.signal(signal.SIGTERM)
    time.sleep(0.3)
    server.signal(signal.SIGTERM)
    code = server.stop(timeout=10)

    assert code == 128 + signal.SIGTERM
    assert any(r["event"].startswith("second signal: exiting now")
               for r in log_records(server.lines))
