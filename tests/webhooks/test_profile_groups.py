"""Groups unticked on Mailchimp's profile page leave the internal lists they map to: the
recorded body format (GROUPINGS) and the emulator's delivery over HTTP, both databases."""

from __future__ import annotations

from typing import Any

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.config import Settings
from syncd.config.targets import TargetSettings
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID, emulated_settings
from tests.webhooks.conftest import Served

ANNA = "anna.example@example.se"
GROUPS = {"newsletter-nl": "Language/Dutch", "newsletter-en": "Language/English"}


@pytest.fixture
def settings(database_url: str, emulator: MailchimpEmulator) -> Settings:
    # The one target of the single-audience settings, given groups (until [[targets]]
    # drive the runs, the stand-in of tests/sync/test_sync_gdpr_fields.py).
    target = TargetSettings(name="default", audience_id=TEST_AUDIENCE_ID,
                            purposes=("newsletter",), interests=GROUPS)
    return emulated_settings(database_url, emulator).model_copy(update={"targets": [target]})


def _lists(ctx: AppContext, email: str) -> list[str]:
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, email)
        assert contact is not None
        return store.list_names(session, contact.id)


def test_a_recorded_profile_body_with_a_group_unticked_leaves_that_list(
        app_context: AppContext, served: Served) -> None:
    add_contact(app_context, ANNA, events=confirmed(), lists=["newsletter-nl", "newsletter-en"])
    assert served.deliver("profile-groupings.form").status_code == 200
    assert _lists(app_context, ANNA) == ["newsletter-nl"]


def test_unticking_a_group_in_mailchimp_leaves_the_internal_list(
        app_context: AppContext, served: Served, emulator: MailchimpEmulator) -> None:
    emulator.audience.add_interest_category("Language", ["Dutch", "English"])
    emulator.audience.webhooks.add({"url": served.url()})
    add_contact(app_context, ANNA, events=confirmed(), lists=["newsletter-nl", "newsletter-en"])
    emulator.seed_member(ANNA, interests={"Dutch": True, "English": True})
    deliveries: list[Any] = emulator.fire_profile(ANNA, interests={"Dutch": False})
    assert [d.status for d in deliveries] == [200]
    assert _lists(app_context, ANNA) == ["newsletter-en"]


def test_a_profile_body_without_groupings_leaves_no_list(
        app_context: AppContext, served: Served) -> None:
    add_contact(app_context, "ada.lovelace@example.com", events=confirmed(),
                lists=["newsletter-nl"])
    assert served.deliver("profile.form").status_code == 200
    assert _lists(app_context, "ada.lovelace@example.com") == ["newsletter-nl"]

