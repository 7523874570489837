"""Profile changes at Mailchimp (`profile`) over HTTP through the real endpoint: names and
mapped merge fields only while the ESP is master for them, audited with the fields that
changed; groups unticked on the profile page leave the lists they map to (audited, the
contact due for the sync) whoever is master for names, never from a stale profile; and
what an ignored profile says."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from syncd import logs
from syncd.config import Settings
from syncd.config.targets import TargetSettings
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.schema import AuditEntry
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID, make_settings
from tests.webhooks.conftest import Served, inbox_rows, stored_log_lines
from tests.webhooks.snapshot import person

ADA = "ada.lovelace@example.com"
GROUPS = {"newsletter-nl": "Language/Dutch", "newsletter-en": "Language/English",
          "events": "Topics/Events"}
FIELDS = {"first_name": "FNAME", "last_name": "LNAME", "interests": "INTERESTS"}
MASTER = "webhook_profile_master"


def _settings(database_url: str, *, master: str) -> Settings:
    target = TargetSettings(name="default", audience_id=TEST_AUDIENCE_ID,
                            purposes=("newsletter", "events"), interests=GROUPS,
                            merge_fields=FIELDS)
    return make_settings(database_url, targets=[target], mailchimp_audience_id=None,
                         **{MASTER: master})


@pytest.fixture
def esp_master(database_url: str) -> Settings:
    return _settings(database_url, master="esp")


@pytest.fixture
def crm_master(database_url: str) -> Settings:
    return _settings(database_url, master="crm")


@pytest.fixture
def open_ctx() -> Iterator[Callable[[Settings], AppContext]]:
    opened: list[AppContext] = []

    def open_(settings: Settings) -> AppContext:
        ctx = AppContext.open(settings)
        ctx.sync_lists()
        opened.append(ctx)
        return ctx

    yield open_
    for ctx in opened:
        ctx.close()


def _profile(*, fired_at: str = "2026-03-03 21:31:21", first: str = "Augusta Ada",
             last: str = "King", languages: str | None = None) -> bytes:
    """A profile body; `languages`: the Language groups left ticked (None: no GROUPINGS)."""
    fields = {"type": "profile", "fired_at": fired_at, "data[id]": "e7c77d3852",
              "data[list_id]": TEST_AUDIENCE_ID, "data[email]": ADA,
              "data[merges][EMAIL]": ADA, "data[merges][FNAME]": first,
              "data[merges][LNAME]": last, "data[merges][INTERESTS]": "Group1,Group2"}
    if languages is not None:
        fields |= {"data[merges][GROUPINGS][0][id]": "78830",
                   "data[merges][GROUPINGS][0][name]": "Language",
                   "data[merges][GROUPINGS][0][groups]": languages}
    return urlencode(fields).encode()


def _audit(ctx: AppContext) -> list[tuple[str, int | None, dict[str, object]]]:
    with transaction(ctx.sessions) as session:
        return [(e.action, e.contact_id, dict(e.details)) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.actor == "esp").order_by(AuditEntry.id))]


def _attributes(ctx: AppContext) -> dict[str, str]:
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, ADA)
        assert contact is not None
        return dict(contact.attributes)


def _outcome(ctx: AppContext) -> tuple[str, str | None]:
    row = inbox_rows(ctx)[-1]
    return row.status, row.last_error


def test_a_profile_is_audited_with_the_fields_it_changed_and_its_channel(
        esp_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(esp_master)
    contact_id = add_contact(ctx, ADA, events=confirmed(), first_name="Ada",
                             last_name="Lovelace")

    served_for(ctx).post(_profile())

    assert _audit(ctx) == [("contact_updated", contact_id, {
        "fields": ["first_name", "last_name", "attributes"], "channel": "esp_webhook"})]
    assert (person(ctx, ADA).first_name, person(ctx, ADA).last_name) == ("Augusta Ada", "King")


def test_a_blank_name_at_mailchimp_clears_the_name(
        esp_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(esp_master)
    add_contact(ctx, ADA, events=confirmed(), first_name="Ada", last_name="King")

    served_for(ctx).post(_profile(first="  "))

    assert (person(ctx, ADA).first_name, person(ctx, ADA).last_name) == (None, "King")


def test_a_profile_keeps_the_attributes_no_merge_field_maps(
        esp_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(esp_master)
    add_contact(ctx, ADA, events=confirmed())
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, ADA)
        assert contact is not None
        contact.attributes = {"city": "Leiden"}

    served_for(ctx).post(_profile())

    assert _attributes(ctx) == {"city": "Leiden", "interests": "Group1,Group2"}


def test_a_profile_while_the_crm_is_master_says_so_and_logs_it(
        crm_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(crm_master)
    add_contact(ctx, ADA, events=confirmed(), first_name="Ada")
    served = served_for(ctx)
    stream = io.StringIO()
    logs.configure(level="info", fmt="json", stream=stream)
    try:
        served.post(_profile())
    finally:
        logs.configure(level="warning", fmt="json")

    assert _outcome(ctx) == ("ignored", "profile master is the CRM")
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert "profile webhook stored, not applied: the CRM is master for names" in events
    assert person(ctx, ADA).first_name == "Ada"


def test_a_profile_for_an_unknown_address_says_so(
        esp_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(esp_master)

    served_for(ctx).post(_profile())

    assert _outcome(ctx) == ("ignored", "profile for an unknown address")


def test_a_stale_profile_says_a_newer_one_was_applied(
        esp_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(esp_master)
    add_contact(ctx, ADA, events=confirmed())
    served = served_for(ctx)
    served.post(_profile(fired_at="2026-03-04 10:00:00", first="Ada"))

    served.post(_profile(fired_at="2026-03-03 10:00:00", first="Augusta Ada"))

    assert _outcome(ctx) == ("ignored", "stale profile: a newer one was applied")
    assert person(ctx, ADA).first_name == "Ada"


def test_an_unticked_group_is_audited_and_makes_the_contact_due_for_the_sync(
        crm_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(crm_master)
    contact_id = add_contact(ctx, ADA, events=confirmed(),
                             lists=["newsletter-nl", "newsletter-en"])
    before = person(ctx, ADA).revision

    served_for(ctx).post(_profile(languages="Dutch"))

    assert _outcome(ctx) == ("applied", None)
    assert _audit(ctx) == [("lists_removed", contact_id, {
        "lists": ["newsletter-en"], "reason": "unticked the group in Mailchimp's profile form"})]
    assert person(ctx, ADA).revision > before


def test_an_unticked_group_while_the_crm_is_master_writes_no_names(
        crm_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(crm_master)
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl", "newsletter-en"],
                first_name="Ada")

    served_for(ctx).post(_profile(languages="Dutch"))

    state = person(ctx, ADA)
    assert (state.lists, state.first_name) == (("newsletter-nl",), "Ada")


def test_an_unticked_group_while_the_esp_is_master_also_writes_the_names(
        esp_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(esp_master)
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl", "newsletter-en"],
                first_name="Ada")

    served_for(ctx).post(_profile(languages="English"))

    state = person(ctx, ADA)
    assert (state.lists, state.first_name, state.last_name) == (
        ("newsletter-en",), "Augusta Ada", "King")
    assert _outcome(ctx) == ("applied", None)


def test_a_list_whose_category_the_profile_does_not_show_is_kept(
        crm_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(crm_master)
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl", "events"])

    served_for(ctx).post(_profile(languages="Dutch"))

    assert person(ctx, ADA).lists == ("events", "newsletter-nl")


def test_a_profile_with_every_group_of_the_persons_lists_ticked_is_a_plain_profile(
        crm_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(crm_master)
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl"])
    before = person(ctx, ADA).revision

    served_for(ctx).post(_profile(languages="Dutch"))

    assert _outcome(ctx) == ("ignored", "profile master is the CRM")
    assert person(ctx, ADA).revision == before


def test_a_stale_profile_with_a_group_unticked_leaves_no_list(
        esp_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(esp_master)
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl", "newsletter-en"])
    served = served_for(ctx)
    served.post(_profile(fired_at="2026-03-04 10:00:00", languages="Dutch,English"))

    served.post(_profile(fired_at="2026-03-03 10:00:00", languages="Dutch"))

    assert person(ctx, ADA).lists == ("newsletter-en", "newsletter-nl")
    assert _outcome(ctx) == ("ignored", "stale profile: a newer one was applied")


def test_an_unticked_group_of_an_unknown_address_leaves_nothing_and_says_so(
        esp_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(esp_master)

    served_for(ctx).post(_profile(languages="Dutch"))

    assert _outcome(ctx) == ("ignored", "profile for an unknown address")


def test_a_profile_with_groups_while_no_audience_is_configured_leaves_no_list(
        database_url: str, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    # No target at all: no list maps to a group, so none is left.
    ctx = open_ctx(make_settings(database_url, mailchimp_audience_id=None))
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl", "newsletter-en"])

    served_for(ctx).post(_profile(languages="Dutch"))

    assert _outcome(ctx) == ("ignored", "profile master is the CRM")
    assert person(ctx, ADA).lists == ("newsletter-en", "newsletter-nl")


def test_the_log_of_a_stored_profile_names_the_contact_it_reached(
        esp_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(esp_master)
    contact_id = add_contact(ctx, ADA, events=confirmed())
    served = served_for(ctx)
    with stored_log_lines() as stored:
        served.post(_profile(fired_at="2026-03-04 10:00:00"))
        served.post(_profile(fired_at="2026-03-03 10:00:00"))  # stale

    assert [(line["outcome"], line["contact_id"]) for line in stored] == [
        ("applied", contact_id), ("ignored", contact_id)]


def test_a_profile_with_a_group_unticked_fired_ahead_of_syncds_clock_leaves_the_list(
        crm_master: Settings, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    # Its moment is syncd's now: the event itself, stored first, is no newer profile.
    ctx = open_ctx(crm_master)
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl", "newsletter-en"])

    served_for(ctx).post(_profile(fired_at="2099-01-01 00:00:00", languages="Dutch"))

    assert person(ctx, ADA).lists == ("newsletter-nl",)


@pytest.mark.parametrize("master", ["crm", "esp"])
def test_the_log_of_a_profile_that_left_a_list_names_the_contact(
        master: str, database_url: str, open_ctx: Callable[[Settings], AppContext],
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = open_ctx(_settings(database_url, master=master))
    contact_id = add_contact(ctx, ADA, events=confirmed(),
                             lists=["newsletter-nl", "newsletter-en"])
    served = served_for(ctx)
    with stored_log_lines() as stored:
        served.post(_profile(languages="Dutch"))

    assert [(line["outcome"], line["contact_id"]) for line in stored] == [
        ("applied", contact_id)]
