"""The push eases the cyclic garbage collector for its run only: after the run, pushed
or failed, the collector's thresholds and its frozen objects are as they were before."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.esp.errors import EspError
from syncd.sync.run import run_sync
from tests.builders import add_contact, confirmed
from tests.conftest import opened
from tests.sync.conftest import sync_settings


@pytest.fixture
def ctx(database_url: str, emulator: MailchimpEmulator) -> Iterator[AppContext]:
    with opened(sync_settings(database_url, emulator, mailchimp_max_retries=0)) as context:
        yield context


def _collector() -> tuple[tuple[int, int, int], int]:
    return gc.get_threshold(), gc.get_freeze_count()


def test_a_push_leaves_the_collector_as_it_found_it(ctx: AppContext) -> None:
    add_contact(ctx, "ada@example.org", events=confirmed())
    before = _collector()

    report = run_sync(ctx)

    assert report.added == 1
    assert _collector() == before


def test_a_push_that_fails_mid_run_leaves_the_collector_as_it_found_it(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    run_sync(ctx)  # the audience pull is done: the next run goes straight to the push
    add_contact(ctx, "ada@example.org", events=confirmed())
    emulator.inject_fault("500", count=None, match=r"^POST /3\.0/lists/[^/]+$")
    before = _collector()

    with pytest.raises(EspError):
        run_sync(ctx)

    assert _collector() == before
