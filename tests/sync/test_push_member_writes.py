"""What the push does when a write to a known member meets a member that is gone, a
re-consent retried after a crash, and a run that breaks half-way: through the sync run
against the emulator (its request hooks play the other writer), on both databases."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailchimp_emulator import MailchimpEmulator
from syncd.addresses import subscriber_hash
from syncd.clock import utcnow
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.schema import PushState
from syncd.sync.push import MISSING_REASON
from syncd.sync.run import run_sync
from tests.builders import add_contact, at, change_first_name, confirmed, push_state, runs
from tests.webhooks.emulated import emulated_context  # noqa: F401 - fixture

ADA = "ada@example.org"
OLD, NEW = "old@example.org", "new@example.org"
PATCH_PATH = r"^PATCH /3\.0/lists/[^/]+/members/"
READ_PATH = r"^GET /3\.0/lists/[^/]+/members/"


@pytest.fixture
def ctx(emulated_context: AppContext) -> AppContext:  # noqa: F811 - the fixture above
    return emulated_context


def test_a_data_change_for_a_member_deleted_at_mailchimp_is_not_re_added(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    # I12: a member deleted at Mailchimp is news (re-read once), never a reason to add.
    add_contact(ctx, ADA, events=confirmed(), first_name="Ada")
    run_sync(ctx)
    emulator.state.delete_permanent(subscriber_hash(ADA))
    change_first_name(ctx, ADA, "Augusta")

    report = run_sync(ctx)

    state = push_state(ctx)
    assert (report.added, report.updated, emulator.member(ADA)) == (0, 0, None)
    assert (state.esp_status, state.parked_reason) == ("missing", MISSING_REASON)


def test_a_data_change_answered_not_found_is_written_when_the_re_read_finds_the_member(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    add_contact(ctx, ADA, events=confirmed(), first_name="Ada")
    run_sync(ctx)
    change_first_name(ctx, ADA, "Augusta")
    saved = emulator.member(ADA)
    assert saved is not None

    def vanish(_request: object) -> None:  # gone for the PATCH (another writer's race) ...
        emulator.state.delete_permanent(subscriber_hash(ADA))

    def back(_request: object) -> None:  # ... and there again when syncd reads it
        emulator.seed_member(ADA, saved["status"], merge_fields=saved["merge_fields"])

    emulator.set_hook(vanish, match=PATCH_PATH, times=1)
    emulator.set_hook(back, match=READ_PATH, times=1)

    report = run_sync(ctx)

    member = emulator.member(ADA)
    assert member is not None
    assert (report.updated, member["merge_fields"]["FNAME"]) == (1, "Augusta")
    assert push_state(ctx).parked_reason is None


def _renamed_in_crm(ctx: AppContext, old: str, new: str) -> None:
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, old)
        assert contact is not None
        contact.email_key = contact.email_display = new
        store.touch(contact)


def test_an_address_change_mailchimp_made_first_is_written_under_the_new_address(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    # Renamed at Mailchimp (its `upemail` webhook lost), then in the CRM too: the rename
    # under the old address finds nothing; the member is re-read and written at the new.
    add_contact(ctx, OLD, events=confirmed(), first_name="Ada")
    run_sync(ctx)
    emulator.fire_upemail(OLD, NEW, deliver=False)
    _renamed_in_crm(ctx, OLD, NEW)
    change_first_name(ctx, NEW, "Augusta")

    report = run_sync(ctx)

    assert [(m["email_address"], m["merge_fields"]["FNAME"]) for m in emulator.members()] == [
        (NEW, "Augusta")]
    assert (report.updated, push_state(ctx).esp_email) == (1, NEW)


def test_an_address_change_to_an_address_mailchimp_refuses_is_parked_and_the_member_kept(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    add_contact(ctx, OLD, events=confirmed())
    run_sync(ctx)
    emulator.configure(refused_addresses=[NEW])
    try:
        _renamed_in_crm(ctx, OLD, NEW)
        report = run_sync(ctx)
    finally:
        emulator.configure(refused_addresses=[])

    state = push_state(ctx)
    assert (report.parked, report.updated) == (1, 0)
    assert state.parked_reason is not None
    assert "looks fake or invalid" in state.parked_reason
    assert [(m["email_address"], m["status"]) for m in emulator.members()] == [
        (OLD, "subscribed")]


def test_a_person_who_left_changed_address_and_came_back_is_asked_once_at_the_new_address(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    add_contact(ctx, OLD, events=confirmed())
    run_sync(ctx)
    add_contact(ctx, OLD, events=[("newsletter", Action.WITHDRAWN, at(5))])
    run_sync(ctx)  # unsubscribed at Mailchimp
    time.sleep(1.0)  # Mailchimp's timestamp_opt holds whole seconds: a later second
    _renamed_in_crm(ctx, OLD, NEW)
    moment = utcnow()
    add_contact(ctx, NEW, events=[("newsletter", Action.GIVEN, moment),
                                  ("newsletter", Action.CONFIRMED,
                                   moment + timedelta(microseconds=1))])

    report = run_sync(ctx)

    assert [(m["email_address"], m["status"]) for m in emulator.members()] == [
        (NEW, "pending")]
    assert (report.reconsent_pending, emulator.confirmation_mails_sent(NEW)) == (1, 1)
    assert emulator.confirmation_mails_sent(OLD) == 0


def test_a_re_consent_retried_after_a_crash_with_new_data_writes_the_data_and_mails_no_one(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    # The earlier `pending` landed before the crash (Mailchimp mailed the confirmation);
    # the CRM changed the contact since: the data is written, no second confirmation.
    add_contact(ctx, ADA, events=confirmed(), first_name="Ada")
    run_sync(ctx)
    add_contact(ctx, ADA, events=[("newsletter", Action.WITHDRAWN, at(5))])
    run_sync(ctx)  # unsubscribed at Mailchimp
    time.sleep(1.0)  # Mailchimp's timestamp_opt holds whole seconds: a later second
    moment = utcnow()
    add_contact(ctx, ADA, first_name="Augusta",
                events=[("newsletter", Action.GIVEN, moment),
                        ("newsletter", Action.CONFIRMED, moment + timedelta(microseconds=1))])
    emulator.seed_member(ADA, "pending")  # the earlier attempt's pending, landed
    with transaction(ctx.sessions) as session:  # ... and marked attempted, data before
        session.scalars(select(PushState)).one().attempt_fingerprint = "f" * 64

    report = run_sync(ctx)

    member = emulator.member(ADA)
    assert member is not None
    assert (report.adopted, report.reconsent_pending) == (1, 0)
    assert (member["status"], member["merge_fields"]["FNAME"]) == ("pending", "Augusta")
    assert emulator.confirmation_mails_sent(ADA) == 0


def test_a_run_whose_progress_display_breaks_is_recorded_failed_by_the_error_name(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    # e.g. `syncd sync` drawing its progress into a closed pipe: the run does not end
    # silently "running"; it is recorded failed, and the error surfaces.
    for n in range(3):
        add_contact(ctx, f"p{n}@example.org", events=confirmed())

    def broken(_done: int, _total: int) -> None:
        raise BrokenPipeError("stdout closed")

    with pytest.raises(BrokenPipeError):
        run_sync(ctx, progress=broken)

    assert runs(ctx)[-1] == ("sync", "failed")
