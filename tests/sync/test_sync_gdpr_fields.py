"""GDPR fields and groups pushed to Mailchimp: a target's marketing permissions enabled
only for a confirmed consent of their purpose and switched off when it is withdrawn,
permissions mapped to no purpose left alone, nothing sent to an audience without GDPR
fields, internal lists sent as interests; both databases, the real client, the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.config import Settings
from syncd.config.targets import TargetSettings
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.errors import ConfigError
from syncd.store import lists
from tests.builders import add_contact, at, confirmed
from tests.conftest import TEST_AUDIENCE_ID
from tests.sync.conftest import Syncer, sync_settings

ADA = "ada@example.org"
OTHER = "already.there@example.org"
GDPR = ("Email", "Direct Mail", "Customized Online Advertising")


def target(**fields: Any) -> dict[str, Any]:
    return {"name": "default", "audience_id": TEST_AUDIENCE_ID, "purposes": ["newsletter"],
            "marketing_permissions": {"Email": "newsletter"},
            "interests": {"newsletter-nl": "Language/Dutch",
                          "newsletter-en": "Language/English"}} | fields


def with_target(settings: Settings, **fields: Any) -> Settings:
    """The single-audience settings with their one target given groups and GDPR fields.
    (A stand-in until `syncd sync` runs [[targets]]: then `targets=[...]` in the TOML.)"""
    return settings.model_copy(update={"targets": [TargetSettings(**target(**fields))]})


@pytest.fixture
def settings(database_url: str, emulator: MailchimpEmulator) -> Settings:
    return with_target(sync_settings(database_url, emulator))


def with_gdpr_fields(emulator: MailchimpEmulator) -> MailchimpEmulator:
    """The audience's GDPR fields, and one member already there (Mailchimp shows the
    permission ids only on members)."""
    for text in GDPR:
        emulator.audience.add_marketing_permission(text)
    emulator.seed_member(OTHER)
    return emulator


@pytest.fixture
def gdpr(emulator: MailchimpEmulator) -> MailchimpEmulator:
    """The audience with GDPR fields and a Language group, and one member already there
    (Mailchimp shows the permission ids only on members)."""
    with_gdpr_fields(emulator)
    emulator.audience.add_interest_category("Language", ["Dutch", "English"])
    return emulator


def permissions(emu: MailchimpEmulator, email: str) -> dict[str, bool]:
    member = emu.member(email)
    assert member is not None
    return {p["text"]: p["enabled"] for p in member["marketing_permissions"]}


def interests(emu: MailchimpEmulator, email: str) -> dict[str, bool]:
    member = emu.member(email)
    assert member is not None
    return {name: member["interests"][emu.audience.interest_id(name)]
            for name in ("Dutch", "English")}


def test_a_confirmed_consent_enables_its_permission_and_only_that_one(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    sync()
    assert permissions(gdpr, ADA) == {"Email": True, "Direct Mail": False,
                                      "Customized Online Advertising": False}


def test_a_withdrawn_consent_switches_its_permission_off(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    sync()
    add_contact(app_context, ADA, events=[("newsletter", Action.WITHDRAWN, at(3))])
    sync()
    assert gdpr.member(ADA)["status"] == "unsubscribed"  # type: ignore[index]
    assert permissions(gdpr, ADA)["Email"] is False


def test_a_permission_mapped_to_no_purpose_is_never_sent(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    gdpr.seed_member(ADA, marketing_permissions={"Direct Mail": True})
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    sync()
    assert permissions(gdpr, ADA)["Direct Mail"] is True


def test_an_audience_without_gdpr_fields_gets_none_and_the_sync_succeeds(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    emulator.audience.add_interest_category("Language", ["Dutch", "English"])
    sent: list[Any] = []
    emulator.set_hook(lambda request: sent.append(request.body), match=r"^POST /3\.0/lists/")
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    report = sync()
    assert report.added == 1
    assert all("marketing_permissions" not in m for b in sent for m in b.get("members", []))
    assert "marketing_permissions" not in emulator.member(ADA)  # type: ignore[operator]


def test_a_group_mailchimp_lacks_is_a_configuration_error_naming_it(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    emulator.audience.add_interest_category("Language", ["Dutch"])
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    with pytest.raises(ConfigError, match='newsletter-en -> "Language/English"'):
        sync()
    assert emulator.member(ADA) is None


def test_a_permission_text_the_audience_lacks_is_a_configuration_error_naming_it(
        database_url: str, gdpr: MailchimpEmulator) -> None:
    settings = with_target(sync_settings(database_url, gdpr),
                           marketing_permissions={"E-mail": "newsletter"})
    ctx = AppContext.open(settings)
    try:
        ctx.sync_lists()
        with pytest.raises(ConfigError, match="no marketing permission 'E-mail'"):
            Syncer(ctx)()
    finally:
        ctx.close()


def test_internal_lists_are_sent_as_interests_and_leaving_one_unticks_it(
        app_context: AppContext, sync: Syncer, gdpr: MailchimpEmulator) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl", "newsletter-en"])
    sync()
    assert interests(gdpr, ADA) == {"Dutch": True, "English": True}
    with transaction(app_context.sessions) as session:
        contact = store.find_contact(session, ADA)
        assert contact is not None
        lists.remove_memberships(session, [contact.id], actor="test", reason="test",
                                 names=["newsletter-en"])
        store.touch(contact)
    sync()
    assert interests(gdpr, ADA) == {"Dutch": True, "English": False}
