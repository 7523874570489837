"""A GDPR marketing permission switched off on Mailchimp's profile page is the member's
withdrawal of the purpose it maps to (docs/mailchimp.md section 6: webhooks carry no
permissions, so the reconciliation reads it): recorded once, the person leaves the
newsletter lists and is unsubscribed, never re-enabled without a new confirmed consent;
a permission never on, or mapped to no purpose, is no withdrawal. Both databases, the
real client over HTTP, the emulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mailchimp_emulator import MailchimpEmulator
from syncd.clock import utcnow
from syncd.config import Settings
from syncd.consent import ledger
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.db import transaction
from syncd.inbound.reconcile import run_reconcile
from syncd.schema import AuditEntry, LedgerChannel
from syncd.store import lists
from syncd.sync.audience_pull import run_pull
from tests.builders import add_contact, confirmed, contact_by_email
from tests.sync.conftest import Syncer, sync_settings
from tests.sync.test_sync_gdpr_fields import permissions, with_gdpr_fields, with_target

ADA = "ada@example.org"


@pytest.fixture
def settings(database_url: str, emulator: MailchimpEmulator) -> Settings:
    return with_target(sync_settings(database_url, emulator), interests={})


@pytest.fixture
def sync(app_context: AppContext) -> Syncer:
    return Syncer(app_context)


@pytest.fixture
def gdpr(emulator: MailchimpEmulator) -> MailchimpEmulator:
    return with_gdpr_fields(emulator)


def switch_off(emu: MailchimpEmulator, email: str, text: str = "Email") -> None:
    """What the person does on Mailchimp's profile page (no webhook carries it)."""
    emu.fire_profile(email, marketing_permissions={text: False}, deliver=False)


def withdrawals(ctx: AppContext, contact_id: int) -> list[tuple[str, str]]:
    with transaction(ctx.sessions) as session:
        facts = ledger.facts_by_contact(session, [contact_id]).get(contact_id, [])
    return [(f.purpose, f.source) for f in facts if f.action is Action.WITHDRAWN]


def audit_count(ctx: AppContext, contact_id: int) -> int:
    with transaction(ctx.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.contact_id == contact_id)) or 0)


def on_lists(ctx: AppContext, contact_id: int) -> list[str]:
    with transaction(ctx.sessions) as session:
        return lists.names_of(session, contact_id)


def status(emu: MailchimpEmulator, email: str) -> str:
    member = emu.member(email)
    assert member is not None
    return str(member["status"])


@pytest.fixture
def switched_off(app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> int:
    """Ada added with her Email permission on, then switched off at Mailchimp, read by
    the reconciliation."""
    cid = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    sync()
    assert permissions(gdpr, ADA)["Email"] is True
    switch_off(gdpr, ADA)
    report = run_reconcile(app_context)
    assert report.permissions_withdrawn == 1
    return cid


def test_a_permission_switched_off_is_recorded_as_a_withdrawal_of_its_purpose(
        app_context: AppContext, switched_off: int) -> None:
    assert withdrawals(app_context, switched_off) == [
        ("newsletter", LedgerChannel.ESP_PERMISSION)]


def test_the_withdrawal_the_list_removal_and_the_suppression_are_audited(
        app_context: AppContext, switched_off: int) -> None:
    with transaction(app_context.sessions) as session:
        rows = session.execute(select(AuditEntry.action, AuditEntry.details).where(
            AuditEntry.contact_id == switched_off, AuditEntry.actor == "esp")).all()
    assert sorted(action for action, _ in rows) == [
        "consent_withdrawn", "lists_removed", "suppressed"]
    assert [d["source"] for a, d in rows if a == "consent_withdrawn"] == ["esp_permission"]


def test_the_person_leaves_the_newsletter_lists_at_once(
        app_context: AppContext, switched_off: int) -> None:
    assert on_lists(app_context, switched_off) == []


def test_the_next_sync_unsubscribes_the_member_still_subscribed_there(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator,
        switched_off: int) -> None:
    assert status(gdpr, ADA) == "subscribed"
    report = sync()
    assert report.unsubscribed == 1
    assert status(gdpr, ADA) == "unsubscribed"


def test_later_syncs_never_switch_the_permission_on_again(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator,
        switched_off: int) -> None:
    sync()
    sync(full=True)
    assert permissions(gdpr, ADA)["Email"] is False
    assert status(gdpr, ADA) == "unsubscribed"


def test_a_repeat_pull_changes_nothing(
        app_context: AppContext, switched_off: int) -> None:
    before = (withdrawals(app_context, switched_off), audit_count(app_context, switched_off),
              contact_by_email(app_context, ADA).revision)  # type: ignore[union-attr]
    report = run_reconcile(app_context)
    assert report.permissions_withdrawn == 0
    assert (withdrawals(app_context, switched_off), audit_count(app_context, switched_off),
            contact_by_email(app_context, ADA).revision) == before  # type: ignore[union-attr]


def test_a_new_confirmed_consent_afterwards_switches_it_on_again(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator,
        switched_off: int) -> None:
    sync()
    now = utcnow()
    add_contact(app_context, ADA, events=[
        ("newsletter", Action.GIVEN, now - timedelta(milliseconds=5)),
        ("newsletter", Action.CONFIRMED, now)])
    report = sync()
    assert report.reconsent_pending == 1
    assert status(gdpr, ADA) == "pending"
    assert permissions(gdpr, ADA)["Email"] is True


def test_a_permission_first_seen_on_then_switched_off_is_a_withdrawal(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    gdpr.seed_member(ADA, marketing_permissions={"Email": True})
    cid = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    sync()  # the first sync reads the audience: Ada's permission is on
    switch_off(gdpr, ADA)
    run_reconcile(app_context)
    assert withdrawals(app_context, cid) == [("newsletter", LedgerChannel.ESP_PERMISSION)]


def test_a_permission_never_on_is_no_withdrawal(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    gdpr.seed_member(ADA)  # every permission off, from before syncd
    cid = add_contact(app_context, ADA, lists=["newsletter-nl"])
    sync()
    switch_off(gdpr, ADA)  # the person saves the page with Email still off
    report = run_reconcile(app_context)
    assert report.permissions_withdrawn == 0
    assert withdrawals(app_context, cid) == []
    assert on_lists(app_context, cid) == ["newsletter-nl"]


def test_a_permission_mapped_to_no_purpose_switched_off_is_ignored(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    gdpr.seed_member(ADA, marketing_permissions={"Email": True, "Direct Mail": True})
    cid = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    sync()
    switch_off(gdpr, ADA, "Direct Mail")
    report = run_reconcile(app_context)
    assert report.permissions_withdrawn == 0
    assert withdrawals(app_context, cid) == []
    sync()
    assert status(gdpr, ADA) == "subscribed"
    assert permissions(gdpr, ADA) == {"Email": True, "Direct Mail": False,
                                      "Customized Online Advertising": False}


def test_the_audience_pull_records_a_permission_switched_off_too(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    cid = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    sync()
    switch_off(gdpr, ADA)
    assert run_pull(app_context).permissions_withdrawn == 1
    assert withdrawals(app_context, cid) == [("newsletter", LedgerChannel.ESP_PERMISSION)]


def test_a_permission_off_for_a_purpose_already_withdrawn_is_no_second_withdrawal(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    cid = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    sync()
    add_contact(app_context, ADA, events=[("newsletter", Action.WITHDRAWN,
                                           utcnow() - timedelta(seconds=1))])
    switch_off(gdpr, ADA)  # as syncd's own write would, racing the read
    assert run_reconcile(app_context).permissions_withdrawn == 0
    assert withdrawals(app_context, cid) == [("newsletter", "web_form")]
