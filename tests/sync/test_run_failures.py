"""How a sync run and an audience pull end when they cannot go on, against the emulator
on both databases: Mailchimp refusing the audience check fails the run before any write
(recorded as failed), and a pull asked to stop leaves the audience unpulled, so the next
sync reads it again."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.db import transaction
from syncd.esp.errors import EspError
from syncd.esp.mailchimp import mailchimp_client
from syncd.schema import PushState, RunOutcome
from syncd.sync.audience_pull import run_pull, was_pulled
from syncd.sync.run import run_sync
from tests.builders import add_contact, confirmed, runs
from tests.conftest import TEST_AUDIENCE_ID, opened
from tests.sync.conftest import sync_settings

ADA = "ada@example.org"
AUDIENCE_CHECK = r"^GET /3\.0/lists/[^/]+$"


@pytest.fixture
def ctx(database_url: str, emulator: MailchimpEmulator) -> Iterator[AppContext]:
    with opened(sync_settings(database_url, emulator, mailchimp_max_retries=0)) as context:
        yield context


def test_a_sync_whose_audience_check_fails_is_recorded_failed_and_writes_nothing(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    run_sync(ctx)  # the audience pull is done: the next run starts with the check
    add_contact(ctx, ADA, events=confirmed())
    emulator.inject_fault("500", count=None, match=AUDIENCE_CHECK)
    emulator.reset_stats()

    with pytest.raises(EspError):
        run_sync(ctx)

    assert runs(ctx)[-1] == ("sync", "failed")
    assert (emulator.stats.write_calls, emulator.member(ADA)) == (0, None)
    with transaction(ctx.sessions) as session:
        assert list(session.scalars(select(PushState))) == []


def test_a_pull_asked_to_stop_is_interrupted_and_leaves_the_audience_unpulled(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    emulator.seed_member(ADA, "subscribed")
    stop = threading.Event()
    stop.set()
    client = mailchimp_client(ctx.settings)
    try:
        report = run_pull(ctx, esp=client, stop=stop)
    finally:
        client.close()

    assert report.outcome == RunOutcome.INTERRUPTED
    assert not was_pulled(ctx, TEST_AUDIENCE_ID)
    assert runs(ctx) == [("audience_pull", "interrupted")]
