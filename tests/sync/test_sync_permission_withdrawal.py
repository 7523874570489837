"""A withdrawn purpose reaches its GDPR marketing permission at Mailchimp: switched off
(`enabled: false`) with the unsubscribe syncd sends, and on a member who is unsubscribed
there already (an unsubscribe link, a withdrawal Mailchimp knew first); sent once, not
again in later runs; a permission mapped to no purpose left as it is. Both databases,
the real client over HTTP, the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.config import Settings
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.esp.mailchimp import MailchimpClient, mailchimp_client
from syncd.inbound.reconcile import run_reconcile
from tests.builders import add_contact, at, confirmed
from tests.sync.conftest import Syncer, sync_settings
from tests.sync.test_sync_gdpr_fields import ADA, GDPR, with_gdpr_fields, with_target

WRITES = r"^(PATCH|PUT|POST|DELETE) "


@pytest.fixture
def settings(database_url: str, emulator: MailchimpEmulator) -> Settings:
    """One target whose GDPR field Email follows the newsletter; Direct Mail is mapped
    to no purpose."""
    return with_target(sync_settings(database_url, emulator), interests={})


@pytest.fixture
def gdpr(emulator: MailchimpEmulator) -> MailchimpEmulator:
    return with_gdpr_fields(emulator)


@pytest.fixture
def esp(settings: Settings) -> Iterator[MailchimpClient]:
    client = mailchimp_client(settings, settings.target().audience_id)
    yield client
    client.close()


def read_permissions(esp: MailchimpClient, emu: MailchimpEmulator) -> dict[str, bool]:
    """The member's permissions as Mailchimp answers a GET, by their texts."""
    member = esp.get_member(ADA)
    assert member is not None
    return {text: member.marketing_permissions[emu.audience.permission_id(text)]
            for text in GDPR}


def writes(emu: MailchimpEmulator) -> list[Any]:
    sent: list[Any] = []
    emu.set_hook(lambda request: sent.append((request.method, request.body)), match=WRITES)
    return sent


def subscribed_then_unsubscribed_at_mailchimp(ctx: AppContext, sync: Syncer,
                                              emu: MailchimpEmulator) -> None:
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl"])
    sync()
    emu.fire_unsubscribe(ADA, deliver=False)  # the unsubscribe link; the webhook lost
    run_reconcile(ctx)


def test_an_unsubscribe_syncd_sends_switches_the_permission_off_in_the_same_call(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator,
        esp: MailchimpClient) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    sync()
    sent = writes(gdpr)
    add_contact(app_context, ADA, events=[("newsletter", Action.WITHDRAWN, at(3))])
    sync()
    assert [(method, body.get("status")) for method, body in sent] == [
        ("PATCH", "unsubscribed")]
    assert read_permissions(esp, gdpr)["Email"] is False


def test_a_member_who_unsubscribed_at_mailchimp_gets_the_permission_switched_off(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator,
        esp: MailchimpClient) -> None:
    subscribed_then_unsubscribed_at_mailchimp(app_context, sync, gdpr)
    assert read_permissions(esp, gdpr)["Email"] is True  # Mailchimp leaves it on
    sent = writes(gdpr)
    report = sync()
    assert report.updated == 1
    assert read_permissions(esp, gdpr)["Email"] is False
    assert esp.get_member(ADA).status == "unsubscribed"  # type: ignore[union-attr]
    assert [body for _, body in sent] == [{
        "email_address": ADA, "marketing_permissions": [
            {"marketing_permission_id": gdpr.audience.permission_id("Email"),
             "enabled": False}]}]  # no status: never one on such a member (I2)


def test_the_permission_off_is_sent_once_not_in_every_run(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    subscribed_then_unsubscribed_at_mailchimp(app_context, sync, gdpr)
    sync()
    sent = writes(gdpr)
    assert sync().write_calls == 0
    assert sync(full=True).write_calls == 0
    assert sent == []


def test_the_permission_an_unsubscribe_switched_off_is_not_sent_again(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    sync()
    add_contact(app_context, ADA, events=[("newsletter", Action.WITHDRAWN, at(3))])
    sync()
    sent = writes(gdpr)
    assert sync(full=True).write_calls == 0
    assert sent == []


def test_a_permission_already_off_at_mailchimp_is_not_sent(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    gdpr.seed_member(ADA, "unsubscribed", marketing_permissions={"Email": False})
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    sent = writes(gdpr)
    sync()  # the pull reads the member: unsubscribed, its permission off
    assert sent == []


def test_a_permission_mapped_to_no_purpose_is_left_on_when_the_purpose_is_withdrawn(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator,
        esp: MailchimpClient) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    sync()
    gdpr.fire_profile(ADA, marketing_permissions={"Direct Mail": True}, deliver=False)
    subscribed = read_permissions(esp, gdpr)
    assert subscribed["Direct Mail"] is True
    gdpr.fire_unsubscribe(ADA, deliver=False)
    run_reconcile(app_context)
    sync()
    after = read_permissions(esp, gdpr)
    assert (after["Email"], after["Direct Mail"]) == (False, True)
