"""GDPR fields (marketing permissions) and groups (interest categories, interests) in the
emulator: the shapes and errors of the Marketing API contract, member writes (PUT,
PATCH, batch) honouring them, reads and profile webhooks showing them."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from mailchimp_emulator import MailchimpEmulator, subscriber_hash
from tests.esp.conftest import Receiver, official_client

ADA = "ada.lovelace@example.com"
GDPR = ("Email", "Direct Mail", "Customized Online Advertising")
GROUPS = {"Topics": ("Dutch", "English")}


@pytest.fixture
def gdpr() -> Any:
    with MailchimpEmulator(marketing_permissions=GDPR, interest_categories=GROUPS) as emu:
        yield emu


@pytest.fixture
def gclient(gdpr: MailchimpEmulator) -> Any:
    return official_client(gdpr)


def _put(client: Any, emu: MailchimpEmulator, **body: Any) -> Any:
    return client.lists.set_list_member(
        emu.list_id, subscriber_hash(ADA),
        {"email_address": ADA, "status_if_new": "subscribed", **body},
    )


def test_the_list_says_whether_gdpr_fields_are_on(
    gdpr: MailchimpEmulator, gclient: Any, emu: MailchimpEmulator, client: Any
) -> None:
    assert gclient.lists.get_list(gdpr.list_id)["marketing_permissions"] is True
    assert client.lists.get_list(emu.list_id)["marketing_permissions"] is False


def test_a_member_of_a_gdpr_audience_carries_every_permission_off_unless_set(
    gdpr: MailchimpEmulator, gclient: Any
) -> None:
    member = _put(gclient, gdpr)
    assert [(p["text"], p["enabled"]) for p in member["marketing_permissions"]] == [
        (text, False) for text in GDPR
    ]


def test_a_put_enables_the_permission_it_names_and_leaves_the_others(
    gdpr: MailchimpEmulator, gclient: Any
) -> None:
    email_id = gdpr.audience.permission_id("Email")
    member = _put(gclient, gdpr, marketing_permissions=[
        {"marketing_permission_id": email_id, "enabled": True}])
    assert {p["text"]: p["enabled"] for p in member["marketing_permissions"]} == {
        "Email": True, "Direct Mail": False, "Customized Online Advertising": False}


def test_a_patch_switches_a_permission_off(gdpr: MailchimpEmulator, gclient: Any) -> None:
    email_id = gdpr.audience.permission_id("Email")
    gdpr.seed_member(ADA, marketing_permissions={"Email": True})
    member = gclient.lists.update_list_member(gdpr.list_id, subscriber_hash(ADA), {
        "marketing_permissions": [{"marketing_permission_id": email_id, "enabled": False}]})
    assert member["marketing_permissions"][0] == {
        "marketing_permission_id": email_id, "text": "Email", "enabled": False}


def test_a_patch_switches_the_permission_of_an_unsubscribed_member_off_and_keeps_the_status(
    gdpr: MailchimpEmulator, gclient: Any
) -> None:
    email_id = gdpr.audience.permission_id("Email")
    gdpr.seed_member(ADA, "unsubscribed", marketing_permissions={"Email": True})
    gclient.lists.update_list_member(gdpr.list_id, subscriber_hash(ADA), {
        "marketing_permissions": [{"marketing_permission_id": email_id, "enabled": False}]})
    member = gclient.lists.get_list_member(gdpr.list_id, subscriber_hash(ADA))
    assert member["status"] == "unsubscribed"
    assert member["marketing_permissions"][0]["enabled"] is False


def test_an_unknown_permission_id_is_refused_and_nothing_changes(
    gdpr: MailchimpEmulator, gclient: Any
) -> None:
    with pytest.raises(ApiClientError) as refused:
        _put(gclient, gdpr, marketing_permissions=[
            {"marketing_permission_id": "nope", "enabled": True}])
    assert refused.value.status_code == 400
    assert gdpr.member(ADA) is None


def test_permissions_sent_to_an_audience_without_gdpr_fields_are_refused(
    emu: MailchimpEmulator, client: Any
) -> None:
    with pytest.raises(ApiClientError) as refused:
        _put(client, emu, marketing_permissions=[
            {"marketing_permission_id": "a1b2c3d4e5", "enabled": True}])
    assert "marketing permissions" in refused.value.text


def test_a_batch_item_sets_permissions_and_interests(
    gdpr: MailchimpEmulator, gclient: Any
) -> None:
    email_id, dutch = gdpr.audience.permission_id("Email"), gdpr.audience.interest_id("Dutch")
    answer = gclient.lists.batch_list_members(gdpr.list_id, {"members": [{
        "email_address": ADA, "status": "subscribed",
        "marketing_permissions": [{"marketing_permission_id": email_id, "enabled": True}],
        "interests": {dutch: True}}]})
    created = answer["new_members"][0]
    assert created["interests"][dutch] is True
    assert created["marketing_permissions"][0]["enabled"] is True


def test_a_batch_item_with_an_unknown_interest_is_a_per_member_error(
    gdpr: MailchimpEmulator, gclient: Any
) -> None:
    answer = gclient.lists.batch_list_members(gdpr.list_id, {"members": [
        {"email_address": ADA, "status": "subscribed", "interests": {"0000000000": True}}]})
    assert answer["error_count"] == 1
    assert "Invalid interest ID" in answer["errors"][0]["error"]


def test_a_member_shows_every_interest_of_the_audience(
    gdpr: MailchimpEmulator, gclient: Any
) -> None:
    dutch, english = (gdpr.audience.interest_id(n) for n in ("Dutch", "English"))
    member = _put(gclient, gdpr, interests={dutch: True})
    assert member["interests"] == {dutch: True, english: False}


def test_interest_categories_and_interests_are_listed_with_their_names(
    gdpr: MailchimpEmulator, gclient: Any
) -> None:
    categories = gclient.lists.get_list_interest_categories(gdpr.list_id)
    assert [(c["title"], c["type"]) for c in categories["categories"]] == [
        ("Topics", "checkboxes")]
    category_id = categories["categories"][0]["id"]
    interests = gclient.lists.list_interest_category_interests(gdpr.list_id, category_id)
    assert [i["name"] for i in interests["interests"]] == ["Dutch", "English"]
    assert interests["total_items"] == 2
    assert interests["interests"][0]["category_id"] == category_id


def test_an_unknown_interest_category_answers_404(
    gdpr: MailchimpEmulator, http: requests.Session
) -> None:
    answer = http.get(f"{gdpr.base_url}/lists/{gdpr.list_id}/interest-categories/nope/interests")
    assert answer.status_code == 404
    assert answer.json()["title"] == "Resource Not Found"


def test_a_category_title_in_use_is_refused(gdpr: MailchimpEmulator, gclient: Any) -> None:
    with pytest.raises(ApiClientError) as refused:
        gclient.lists.create_list_interest_category(
            gdpr.list_id, {"title": "Topics", "type": "checkboxes"})
    assert "already exists" in refused.value.text


def test_an_interest_added_through_the_api_is_on_members(
    gdpr: MailchimpEmulator, gclient: Any
) -> None:
    category = gclient.lists.create_list_interest_category(
        gdpr.list_id, {"title": "Events", "type": "checkboxes"})
    added = gclient.lists.create_interest_category_interest(
        gdpr.list_id, category["id"], {"name": "Webinars"})
    assert added["id"] in _put(gclient, gdpr)["interests"]


def test_a_profile_webhook_carries_the_groups_the_person_ticked(
    gdpr: MailchimpEmulator, receiver: Receiver
) -> None:
    gdpr.audience.webhooks.add({"url": receiver.url})
    gdpr.seed_member(ADA, interests={"Dutch": True, "English": True})
    receiver.received.clear()
    gdpr.fire_profile(ADA, interests={"English": False})
    body = parse_qs(receiver.wait(1)[0].body.decode(), keep_blank_values=True)
    assert body["data[merges][INTERESTS]"] == ["Dutch"]
    assert body["data[merges][GROUPINGS][0][name]"] == ["Topics"]
    assert body["data[merges][GROUPINGS][0][groups]"] == ["Dutch"]


def test_a_permission_switched_off_on_the_profile_page_shows_in_the_member(
    gdpr: MailchimpEmulator, gclient: Any
) -> None:
    gdpr.seed_member(ADA, marketing_permissions={"Email": True})
    gdpr.fire_profile(ADA, marketing_permissions={"Email": False})
    member = gclient.lists.get_list_member(gdpr.list_id, subscriber_hash(ADA))
    assert member["marketing_permissions"][0]["enabled"] is False


def test_reset_restores_the_set_up_groups_and_drops_added_ones(gdpr: MailchimpEmulator) -> None:
    gdpr.audience.add_interest_category("Events", ["Webinars"])
    gdpr.reset()
    assert [c.title for c in gdpr.audience.fields.categories.values()] == ["Topics"]
    assert list(gdpr.audience.fields.permissions.values()) == list(GDPR)
