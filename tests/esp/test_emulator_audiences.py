"""Several audiences in one account: each by its list id, its own members and webhooks,
an unknown list id answered 404 as Mailchimp does, the default audience as before."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from mailchimp_emulator import DEFAULT_LIST_ID, MailchimpEmulator, subscriber_hash
from tests.esp.conftest import Receiver

ADA = "ada.lovelace@example.com"
OFFERS = "0ffe7512ab"


def _hook(emu: MailchimpEmulator, url: str, list_id: str) -> None:
    emu.audience_of(list_id).webhooks.add(
        {"url": url, "sources": {"user": True, "admin": True, "api": False}}
    )


def test_lists_shows_every_audience_of_the_account(emu: MailchimpEmulator, client: Any) -> None:
    emu.add_audience(OFFERS, name="Offers")
    lists = client.lists.get_all_lists()
    assert [a["id"] for a in lists["lists"]] == [DEFAULT_LIST_ID, OFFERS]
    assert lists["total_items"] == 2
    assert client.lists.get_list(OFFERS)["name"] == "Offers"


def test_an_unknown_list_id_answers_404_in_mailchimps_problem_shape(
    emu: MailchimpEmulator, http: requests.Session
) -> None:
    answer = http.get(f"{emu.base_url}/lists/0000000000/members")
    assert answer.status_code == 404
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.json()["title"] == "Resource Not Found"


def test_a_member_written_to_one_audience_is_not_in_the_other(
    emu: MailchimpEmulator, client: Any
) -> None:
    emu.add_audience(OFFERS)
    client.lists.set_list_member(
        OFFERS, subscriber_hash(ADA), {"email_address": ADA, "status_if_new": "subscribed"}
    )
    assert emu.member(ADA, list_id=OFFERS) is not None
    assert emu.member(ADA) is None
    with pytest.raises(ApiClientError) as missing:
        client.lists.get_list_member(DEFAULT_LIST_ID, subscriber_hash(ADA))
    assert missing.value.status_code == 404


def test_a_member_read_from_an_added_audience_carries_its_list_id(
    emu: MailchimpEmulator, client: Any
) -> None:
    emu.add_audience(OFFERS)
    emu.seed_member(ADA, list_id=OFFERS)
    assert client.lists.get_list_member(OFFERS, subscriber_hash(ADA))["list_id"] == OFFERS


def test_an_event_in_an_added_audience_reaches_only_its_webhooks_with_its_list_id(
    emu: MailchimpEmulator, receiver: Receiver
) -> None:
    emu.add_audience(OFFERS)
    _hook(emu, receiver.url + "&list=offers", OFFERS)
    _hook(emu, receiver.url + "&list=default", DEFAULT_LIST_ID)
    emu.seed_member(ADA, list_id=OFFERS)
    receiver.received.clear()  # the validator GETs
    deliveries = emu.fire_unsubscribe(ADA, list_id=OFFERS)
    assert [d.url.rsplit("=", 1)[1] for d in deliveries] == ["offers"]
    body = parse_qs(receiver.wait(1)[0].body.decode())
    assert body["data[list_id]"] == [OFFERS]


def test_an_audience_can_be_added_through_the_control_endpoint(
    emu: MailchimpEmulator, client: Any
) -> None:
    answer = requests.post(
        f"{emu.control_url}/audiences",
        json={"list_id": OFFERS, "marketing_permissions": ["Email"]},
        timeout=5,
    )
    assert answer.status_code == 200
    assert list(answer.json()["marketing_permissions"].values()) == ["Email"]
    assert client.lists.get_list(OFFERS)["marketing_permissions"] is True


def test_adding_a_list_id_in_use_is_refused(emu: MailchimpEmulator) -> None:
    with pytest.raises(ValueError, match="exists already"):
        emu.add_audience(DEFAULT_LIST_ID)


def test_reset_drops_added_audiences_and_keeps_the_constructors() -> None:
    with MailchimpEmulator(audiences=[OFFERS]) as emu:
        emu.add_audience("1a2b3c4d5e")
        emu.seed_member(ADA, list_id=OFFERS)
        emu.reset()
        assert list(emu.audiences) == [DEFAULT_LIST_ID, OFFERS]
        assert emu.members(list_id=OFFERS) == []


def test_rules_configured_for_one_audience_leave_the_other_alone(
    emu: MailchimpEmulator,
) -> None:
    emu.add_audience(OFFERS)
    emu.configure(OFFERS, required_merge_fields=["FNAME"])
    assert emu.audience.rules.required_merge_fields == ()
    assert emu.audience_of(OFFERS).rules.required_merge_fields == ("FNAME",)
