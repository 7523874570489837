"""What the push does with Mailchimp's answers that the fault tests leave open, through
the sync run against the emulator on both databases: an address refused for too many
recent sign-ups waits, an unsubscribed member from before syncd is left alone, and a
withdrawal of a member deleted at Mailchimp settles without an error."""

from __future__ import annotations

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.addresses import subscriber_hash
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.sync.run import run_sync
from tests.builders import add_contact, at, confirmed, push_state
from tests.webhooks.emulated import emulated_context  # noqa: F401 - fixture

ADA = "ada@example.org"


@pytest.fixture
def ctx(emulated_context: AppContext) -> AppContext:  # noqa: F811 - the fixture above
    return emulated_context


def test_an_address_refused_for_recent_sign_ups_is_not_tried_again_before_its_moment(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    emulator.configure(recent_signup_addresses=[ADA])
    try:
        add_contact(ctx, ADA, events=confirmed())
        first = run_sync(ctx)
        emulator.reset_stats()
        second = run_sync(ctx)
    finally:
        emulator.configure(recent_signup_addresses=[])

    state = push_state(ctx)
    assert (first.parked, emulator.member(ADA)) == (1, None)
    assert (state.retry_after is not None, state.settled_revision) == (True, 0)
    assert (second.write_calls, emulator.stats.write_calls) == (0, 0)


def test_an_unsubscribed_member_from_before_syncd_is_left_unsubscribed(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    # The person left at Mailchimp after the confirmation the CRM holds: no re-consent.
    run_sync(ctx)  # the first run's audience pull: the member below arrives after it
    emulator.seed_member(ADA, "unsubscribed")
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl"])

    run_sync(ctx)
    emulator.reset_stats()
    again = run_sync(ctx)

    member = emulator.member(ADA)
    assert member is not None
    assert (member["status"], emulator.confirmation_mails_sent(ADA)) == ("unsubscribed", 0)
    assert (push_state(ctx).esp_status, again.write_calls) == ("unsubscribed", 0)


def test_a_withdrawal_of_a_member_deleted_at_mailchimp_settles_without_an_error(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    add_contact(ctx, ADA, events=confirmed())
    run_sync(ctx)
    emulator.state.delete_permanent(subscriber_hash(ADA))
    add_contact(ctx, ADA, events=[("newsletter", Action.WITHDRAWN, at(5))])

    report = run_sync(ctx)
    again = run_sync(ctx)

    assert (report.failed, report.parked, emulator.member(ADA)) == (0, 0, None)
    assert (push_state(ctx).esp_status, again.considered) == (None, 0)
