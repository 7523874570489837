"""The re-consent (`pending`) paths of the push that the other sync tests leave open,
through the sync run against the emulator on both databases: a member from before syncd,
found by the add, who confirmed again after leaving, is sent `pending` once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.sync.run import run_sync
from tests.builders import add_contact, confirm_now, confirmed
from tests.conftest import opened
from tests.sync.conftest import sync_settings

ADA = "ada@example.org"


@pytest.fixture
def ctx(database_url: str, emulator: MailchimpEmulator) -> Iterator[AppContext]:
    with opened(sync_settings(database_url, emulator)) as context:
        yield context


def test_a_member_found_by_the_add_who_confirmed_after_leaving_is_sent_pending_once(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    run_sync(ctx)  # the first run's audience pull: the member below arrives after it
    emulator.seed_member(ADA, "unsubscribed")
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl"])
    time.sleep(1.0)  # Mailchimp's timestamp_opt holds whole seconds: a later second
    confirm_now(ctx, ADA)  # newer than the unsubscribe Mailchimp holds

    first = run_sync(ctx)
    again = run_sync(ctx)

    member = emulator.member(ADA)
    assert member is not None
    assert (first.reconsent_pending, member["status"]) == (1, "pending")
    assert (emulator.confirmation_mails_sent(ADA), again.write_calls) == (1, 0)

