"""A target with several purposes: a confirmed consent for ANY of them admits the person,
each GDPR permission follows its own purpose's consent, a permission switched off at
Mailchimp withdraws only its purpose (the member stays for the other), and an
unsubscribe in that audience withdraws them all. And a dry run reads the audience's
GDPR fields like a real run (GETs only), so it plans what that run would send. Both
databases, the real client over HTTP, the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.config import Settings
from syncd.consent import ledger
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.inbound.reconcile import run_reconcile
from tests.builders import add_contact, confirmed
from tests.sync.conftest import Syncer, sync_settings
from tests.sync.test_sync_gdpr_fields import permissions, with_gdpr_fields, with_target

ADA = "ada@example.org"
BOTH = {"Email": "newsletter", "Direct Mail": "events"}


@pytest.fixture
def settings(database_url: str, emulator: MailchimpEmulator) -> Settings:
    return with_target(sync_settings(database_url, emulator), interests={},
                       purposes=["newsletter", "events"], marketing_permissions=BOTH)


@pytest.fixture
def sync(app_context: AppContext) -> Syncer:
    return Syncer(app_context)


@pytest.fixture
def gdpr(emulator: MailchimpEmulator) -> MailchimpEmulator:
    return with_gdpr_fields(emulator)


def member(emu: MailchimpEmulator, email: str) -> dict[str, Any]:
    found = emu.member(email)
    assert found is not None
    return found


def withdrawn(ctx: AppContext, contact_id: int) -> set[str]:
    with transaction(ctx.sessions) as session:
        facts = ledger.facts_by_contact(session, [contact_id]).get(contact_id, [])
    return {f.purpose for f in facts if f.action is Action.WITHDRAWN}


def test_a_confirmed_consent_for_the_second_purpose_alone_admits(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    add_contact(app_context, ADA, events=confirmed("events"), lists=["events"])
    assert sync().added == 1
    assert member(gdpr, ADA)["status"] == "subscribed"


def test_each_permission_follows_its_own_purpose(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    add_contact(app_context, ADA, events=confirmed("events"), lists=["events"])
    sync()
    assert permissions(gdpr, ADA) == {"Email": False, "Direct Mail": True,
                                      "Customized Online Advertising": False}


def test_consents_for_both_purposes_switch_both_permissions_on(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    add_contact(app_context, ADA, events=[*confirmed("newsletter"), *confirmed("events")],
                lists=["newsletter-nl", "events"])
    sync()
    assert permissions(gdpr, ADA)["Email"] is True
    assert permissions(gdpr, ADA)["Direct Mail"] is True


def test_a_consent_for_a_purpose_the_target_lacks_admits_nobody(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    add_contact(app_context, ADA, events=confirmed("offers"), lists=["offers"])
    assert sync().added == 0
    assert gdpr.member(ADA) is None


def test_withdrawing_one_purpose_keeps_the_member_for_the_other_with_its_permission_off(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    cid = add_contact(app_context, ADA, events=[*confirmed("newsletter"),
                                                *confirmed("events")],
                      lists=["newsletter-nl", "events"])
    sync()
    gdpr.fire_profile(ADA, marketing_permissions={"Email": False}, deliver=False)
    run_reconcile(app_context)
    assert withdrawn(app_context, cid) == {"newsletter"}
    report = sync()
    assert report.updated == 1
    assert report.unsubscribed == 0
    assert member(gdpr, ADA)["status"] == "subscribed"
    assert permissions(gdpr, ADA)["Email"] is False
    assert permissions(gdpr, ADA)["Direct Mail"] is True
    sync(full=True)
    assert permissions(gdpr, ADA)["Email"] is False


def test_an_unsubscribe_in_the_audience_withdraws_every_purpose_of_the_target(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    cid = add_contact(app_context, ADA, events=[*confirmed("newsletter"),
                                                *confirmed("events")],
                      lists=["newsletter-nl", "events"])
    sync()
    gdpr.fire_unsubscribe(ADA, deliver=False)
    run_reconcile(app_context)
    assert withdrawn(app_context, cid) == {"newsletter", "events"}


def test_a_dry_run_reads_the_gdpr_fields_and_plans_what_the_run_would_send(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    add_contact(app_context, ADA, events=confirmed("events"), lists=["events"])
    sync()
    with transaction(app_context.sessions) as session:
        contact = store.find_contact(session, ADA)
        assert contact is not None
        store.touch(contact)  # planned again; nothing to send
    report = sync(dry_run=True)
    assert (report.updated, report.unchanged) == (0, 1)
    assert sync().updated == 0


def test_a_dry_run_makes_no_write_call(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    calls: list[str] = []
    gdpr.set_hook(lambda request: calls.append(request.method), match=r"^")
    add_contact(app_context, ADA, events=confirmed("events"), lists=["events"])
    report = sync(dry_run=True)
    assert report.added == 1
    assert calls
    assert set(calls) == {"GET"}
