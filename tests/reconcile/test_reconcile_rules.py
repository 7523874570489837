"""The reconciliation run for the cases test_reconcile.py leaves open: a member whose
address Mailchimp holds cannot be read is skipped (never stored, the run goes on) and
is counted as such."""

from __future__ import annotations

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.inbound.reconcile import ReconcileReport, run_reconcile
from tests.builders import add_contact, confirmed
from tests.webhooks.conftest import inbox_rows

ADA = "ada.lovelace@example.com"


def _pull_with_an_unreadable_member(ctx: AppContext, emu: MailchimpEmulator
                                    ) -> ReconcileReport:
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl"])
    emu.seed_member(ADA, "subscribed")
    emu.seed_member("no-address-here", "unsubscribed")
    emu.fire_unsubscribe(ADA, deliver=False)
    return run_reconcile(ctx)


def test_an_unsubscribed_member_without_a_readable_address_is_skipped_not_stored(
        emulated_context: AppContext, emulator: MailchimpEmulator) -> None:
    report = _pull_with_an_unreadable_member(emulated_context, emulator)

    assert (report.outcome, report.applied) == ("succeeded", 1)
    assert [row.kind for row in inbox_rows(emulated_context)] == ["unsubscribe"]


def test_an_unsubscribed_member_without_a_readable_address_is_counted_as_skipped(
        emulated_context: AppContext, emulator: MailchimpEmulator) -> None:
    report = _pull_with_an_unreadable_member(emulated_context, emulator)

    assert report.skipped_no_address == 1
