"""A target's configuration is fingerprinted per audience: a change of its merge fields
re-plans every contact on the next run (a parked one is retried), `--full` re-plans
everyone on demand, an unchanged configuration re-plans nobody."""

from __future__ import annotations

from typing import Any

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.sync.run import run_sync
from syncd.sync.sync_report import SyncReport
from tests.builders import add_contact, confirmed
from tests.conftest import emulated_settings

ADA, BOB = "ada@example.org", "bob@example.org"


def _sync(database_url: str, emu: MailchimpEmulator, **settings: Any) -> SyncReport:
    ctx = AppContext.open(emulated_settings(database_url, emu, **settings))
    try:
        ctx.sync_lists()
        return run_sync(ctx)
    finally:
        ctx.close()


def _people(database_url: str, emu: MailchimpEmulator) -> None:
    ctx = AppContext.open(emulated_settings(database_url, emu))
    try:
        ctx.sync_lists()
        add_contact(ctx, ADA, events=confirmed(), first_name="Ada", last_name="Lovelace")
        add_contact(ctx, BOB, events=confirmed(), first_name="Bob", last_name="Baker")
    finally:
        ctx.close()


def test_a_merge_fields_change_re_plans_every_member_of_the_target(
        database_url: str, emulator: MailchimpEmulator) -> None:
    _people(database_url, emulator)
    _sync(database_url, emulator, mailchimp_merge_fields={"first_name": "FNAME"})
    unchanged = _sync(database_url, emulator, mailchimp_merge_fields={"first_name": "FNAME"})

    changed = _sync(database_url, emulator,
                    mailchimp_merge_fields={"first_name": "FNAME", "last_name": "LNAME"})

    assert (unchanged.considered, unchanged.replanned) == (0, None)
    assert (changed.considered, changed.updated, changed.replanned) == (
        2, 2, "configuration changed")
    assert emulator.member(ADA)["merge_fields"]["LNAME"] == "Lovelace"  # type: ignore[index]
    after = _sync(database_url, emulator,
                  mailchimp_merge_fields={"first_name": "FNAME", "last_name": "LNAME"})
    assert (after.considered, after.replanned) == (0, None)


def test_a_contact_parked_for_a_missing_merge_field_is_retried_when_the_mapping_changes(
        database_url: str, emulator: MailchimpEmulator) -> None:
    emulator.configure(required_merge_fields=("LNAME",))
    _people(database_url, emulator)
    parked = _sync(database_url, emulator, mailchimp_merge_fields={"first_name": "FNAME"})

    retried = _sync(database_url, emulator,
                    mailchimp_merge_fields={"first_name": "FNAME", "last_name": "LNAME"})

    assert (parked.parked, parked.added) == (2, 0)
    assert (retried.added, retried.parked) == (2, 0)
    assert emulator.member(BOB) is not None


def test_full_re_plans_every_contact_without_a_configuration_change(
        database_url: str, emulator: MailchimpEmulator) -> None:
    ctx = AppContext.open(emulated_settings(database_url, emulator))
    try:
        ctx.sync_lists()
        add_contact(ctx, ADA, events=confirmed())
        add_contact(ctx, BOB, events=confirmed())
        run_sync(ctx)
        again = run_sync(ctx)
        full = run_sync(ctx, full=True)
        dry = run_sync(ctx, full=True, dry_run=True)
    finally:
        ctx.close()

    assert again.considered == 0
    assert (full.considered, full.unchanged, full.write_calls, full.replanned) == (
        2, 2, 0, "full")
    assert (dry.considered, dry.replanned) == (2, "full")


def test_a_dry_run_shows_the_re_plan_of_a_changed_configuration_and_records_nothing(
        database_url: str, emulator: MailchimpEmulator) -> None:
    _people(database_url, emulator)
    _sync(database_url, emulator, mailchimp_merge_fields={"first_name": "FNAME"})
    wider = {"first_name": "FNAME", "last_name": "LNAME"}
    ctx = AppContext.open(emulated_settings(database_url, emulator,
                                            mailchimp_merge_fields=wider))
    try:
        dry = run_sync(ctx, dry_run=True)
        real = run_sync(ctx)
    finally:
        ctx.close()

    assert (dry.considered, dry.updated, dry.replanned) == (2, 2, "configuration changed")
    assert (real.updated, real.replanned) == (2, "configuration changed")
