"""Hard bounces and profile changes the fixture deliveries leave open, over HTTP through
the real endpoint: an event for an address the CRM does not hold creates nothing, a bounce
already in effect changes nothing, and a profile (ESP as master) writes a mapped
attribute, while a profile with the names the CRM already has changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.schema import AuditEntry
from tests.builders import add_contact, confirmed
from tests.conftest import fixture_body, make_settings
from tests.webhooks.conftest import Served, inbox_rows
from tests.webhooks.snapshot import person, suppressions

ADA = "ada.lovelace@example.com"
NOBODY = "nobody.home@example.net"  # the address of the cleaned-hard fixture


@pytest.fixture
def esp_master(database_url: str) -> Iterator[AppContext]:
    ctx = AppContext.open(make_settings(
        database_url, webhook_profile_master="esp",
        mailchimp_merge_fields={"first_name": "FNAME", "last_name": "LNAME",
                                "interests": "INTERESTS"}))
    ctx.sync_lists()
    yield ctx
    ctx.close()


def _actions(ctx: AppContext) -> list[str]:
    with transaction(ctx.sessions) as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_a_hard_bounce_for_an_address_the_crm_does_not_hold_is_ignored(
        served: Served, app_context: AppContext) -> None:
    response = served.deliver("cleaned-hard.form")

    [row] = inbox_rows(app_context)
    assert (response.status_code, row.status) == (200, "ignored")
    assert person(app_context, NOBODY).email_key is None
    assert suppressions(app_context, NOBODY) == {}


def test_a_second_hard_bounce_of_an_undeliverable_address_changes_nothing(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, NOBODY, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("cleaned-hard.form")
    after_first = person(app_context, NOBODY)

    again = fixture_body("cleaned-hard.form").replace(b"2026-03-07", b"2026-03-08")
    served.post(again)

    assert [row.status for row in inbox_rows(app_context)] == ["applied", "ignored"]
    assert person(app_context, NOBODY) == after_first
    assert _actions(app_context).count("marked_undeliverable") == 1


def test_a_profile_for_an_address_the_crm_does_not_hold_creates_nobody(
        esp_master: AppContext, served_for: Callable[[AppContext], Served]) -> None:
    served = served_for(esp_master)

    response = served.deliver("profile.form")

    [row] = inbox_rows(esp_master)
    assert (response.status_code, row.status) == (200, "ignored")
    assert person(esp_master, ADA).email_key is None


def test_a_profile_writes_a_mapped_merge_field_into_the_contacts_attributes(
        esp_master: AppContext, served_for: Callable[[AppContext], Served]) -> None:
    add_contact(esp_master, ADA, events=confirmed(), first_name="Augusta Ada",
                last_name="King")
    served = served_for(esp_master)

    served.deliver("profile.form")

    with transaction(esp_master.sessions) as session:
        contact = store.find_contact(session, ADA)
        assert contact is not None
        assert contact.attributes == {"interests": "Group1,Group2"}
    assert _actions(esp_master).count("contact_updated") == 1


def test_a_profile_with_the_names_the_crm_already_has_changes_nothing(
        esp_master: AppContext, served_for: Callable[[AppContext], Served]) -> None:
    add_contact(esp_master, ADA, events=confirmed(), first_name="Augusta Ada",
                last_name="King")
    with transaction(esp_master.sessions) as session:
        contact = store.find_contact(session, ADA)
        assert contact is not None
        contact.attributes = {"interests": "Group1,Group2"}
    before = person(esp_master, ADA)
    served = served_for(esp_master)

    served.deliver("profile.form")

    [row] = inbox_rows(esp_master)
    assert row.status == "applied"
    assert person(esp_master, ADA).revision == before.revision
    assert "contact_updated" not in _actions(esp_master)
