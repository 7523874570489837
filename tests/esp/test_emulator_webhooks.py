"""Webhooks: registration through the official client, and events delivered exactly as
Mailchimp sends them (compared byte for byte with recorded bodies)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from mailchimp_marketing.api_client import ApiClientError

from mailchimp_emulator import MailchimpEmulator, subscriber_hash
from mailchimp_emulator import audience_core as emulator_state
from tests.esp.conftest import Receiver

FIXTURES = Path(__file__).parents[1] / "fixtures" / "webhooks"
ADA = "ada.lovelace@example.com"


def recorded(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def at(text: str) -> MailchimpEmulator:
    """An emulator whose clock is stuck at a fixture's `fired_at`."""
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return MailchimpEmulator(clock=lambda: moment)


@pytest.fixture
def hooked(receiver: Receiver) -> Iterator[Any]:
    """Start an emulator with `receiver` registered for every event and source."""
    started: list[MailchimpEmulator] = []

    def start(emu: MailchimpEmulator, **sources: bool) -> MailchimpEmulator:
        emu.start()
        started.append(emu)
        emu.audience.webhooks.add({
            "url": receiver.url,
            "events": dict.fromkeys(("subscribe", "unsubscribe", "profile", "cleaned",
                                     "upemail", "campaign"), True),
            "sources": {"user": True, "admin": True, "api": False, **sources},
        })
        return emu

    yield start
    for emu in started:
        emu.stop()


def seed_ada(emu: MailchimpEmulator, status: str = "subscribed", **fields: Any) -> None:
    emu.seed_member(ADA, status, merge_fields={"FNAME": "Ada", "LNAME": "Lovelace"},
                    ip_opt="203.0.113.7", **fields)


def test_webhook_crud_through_the_official_client(client: Any, emu: MailchimpEmulator) -> None:
    emu.configure(validate_webhook_urls=False)  # nobody serves the URL below
    created = client.lists.create_list_webhook(emu.list_id, {
        "url": "http://127.0.0.1:9/hook", "events": {"unsubscribe": True, "campaign": False},
        "sources": {"user": True, "admin": True, "api": False}})

    client.lists.update_list_webhook(emu.list_id, created["id"], {"events": {"profile": False}})
    fetched = client.lists.get_list_webhook(emu.list_id, created["id"])
    listed = client.lists.get_list_webhooks(emu.list_id)
    deleted = client.lists.delete_list_webhook(emu.list_id, created["id"])

    assert fetched["events"]["profile"] is False
    assert fetched["sources"] == {"user": True, "admin": True, "api": False}
    assert [w["id"] for w in listed["webhooks"]] == [created["id"]]
    assert deleted.status_code == 204
    assert client.lists.get_list_webhooks(emu.list_id)["total_items"] == 0


def test_saving_a_webhook_runs_mailchimp_validator_get(
    client: Any, emu: MailchimpEmulator, receiver: Receiver
) -> None:
    # No configure: the emulator validates by default, as Mailchimp does.
    client.lists.create_list_webhook(emu.list_id, {"url": receiver.url})

    check = receiver.received[0]
    assert (check.method, check.headers["User-Agent"]) == ("GET", "MailChimp.com WebHook Validator")


def test_webhook_url_that_fails_the_validator_is_refused(
    client: Any, emu: MailchimpEmulator, receiver: Receiver
) -> None:
    emu.configure(validate_webhook_urls=True)
    receiver.get_status = 404

    with pytest.raises(ApiClientError) as exc:
        client.lists.create_list_webhook(emu.list_id, {"url": receiver.url})

    assert exc.value.status_code == 400
    assert client.lists.get_list_webhooks(emu.list_id)["total_items"] == 0


def test_unsubscribe_is_delivered_byte_for_byte(hooked: Any, receiver: Receiver) -> None:
    emu = hooked(at("2026-03-04 13:10:40"))
    seed_ada(emu, unique_email_id="94826aa750", web_id=203740265)

    deliveries = emu.fire_unsubscribe(ADA, reason="manual", campaign_id="cb398d21d2")

    assert [d.status for d in deliveries] == [200]
    assert receiver.received[0].body == recorded("unsubscribe.form")


def test_unsubscribe_without_action_matches_the_real_capture(
    hooked: Any, receiver: Receiver
) -> None:
    emu = hooked(at("2026-03-05 22:15:36"))
    emu.configure(known_merge_fields=["FNAME", "LNAME", "ADDRESS", "PHONE", "BIRTHDAY"])
    emu.seed_member("grace.hopper@example.com", unique_email_id="4c757c941a", web_id=3430347,
                    ip_opt="198.51.100.23")

    emu.fire_unsubscribe("grace.hopper@example.com", action=None)

    assert receiver.received[0].body == recorded("unsubscribe-no-action.form")


def test_subscribe_confirmation_is_delivered_byte_for_byte(
    hooked: Any, receiver: Receiver
) -> None:
    emu = hooked(at("2026-03-02 09:42:31"))
    seed_ada(emu, "pending", unique_email_id="e7c77d3852", web_id=210833825)

    emu.fire_subscribe(ADA)

    assert receiver.received[0].body == recorded("subscribe.form")
    assert emu.member(ADA)["status"] == "subscribed"  # type: ignore[index]


def test_profile_is_delivered_byte_for_byte(hooked: Any, receiver: Receiver) -> None:
    emu = hooked(at("2026-03-03 21:31:21"))
    emu.configure(known_merge_fields=["FNAME", "LNAME", "INTERESTS"])
    seed_ada(emu, unique_email_id="e7c77d3852")

    emu.fire_profile(ADA, {"FNAME": "Augusta Ada", "LNAME": "King", "INTERESTS": "Group1,Group2"})

    assert receiver.received[0].body == recorded("profile.form")


def test_cleaned_is_delivered_byte_for_byte(hooked: Any, receiver: Receiver) -> None:
    emu = hooked(at("2026-03-07 22:01:00"))
    emu.seed_member("nobody.home@example.net")

    emu.fire_cleaned("nobody.home@example.net", "hard", "4fjk2ma9xd")

    assert receiver.received[0].body == recorded("cleaned-hard.form")
    assert emu.member("nobody.home@example.net")["status"] == "cleaned"  # type: ignore[index]


def test_upemail_is_delivered_byte_for_byte_followed_by_profile(
    hooked: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = hooked(at("2026-03-03 22:15:09"))
    seed_ada(emu)
    monkeypatch.setattr(emulator_state, "new_unique_email_id", lambda: "51da8c3259")

    emu.fire_upemail(ADA, "ada.king@example.org")

    assert receiver.received[0].body == recorded("upemail.form")
    assert dict(parse_qsl(receiver.received[1].body.decode()))["type"] == "profile"
    assert emu.member("ada.king@example.org") is not None
    assert emu.member(ADA) is None


def test_campaign_is_delivered_byte_for_byte(hooked: Any, receiver: Receiver) -> None:
    emu = hooked(at("2026-03-02 21:31:21"))

    emu.fire_campaign("5aa2102003", "March newsletter")

    assert receiver.received[0].body == recorded("campaign.form")


def test_webhook_post_has_mailchimp_headers(hooked: Any, receiver: Receiver) -> None:
    emu = hooked(MailchimpEmulator())
    seed_ada(emu)

    emu.fire_unsubscribe(ADA)

    headers = receiver.received[0].headers
    assert headers["User-Agent"] == "MailChimp.com"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert receiver.received[0].path == "/hooks/mailchimp?secret=s3"


def test_fired_at_is_utc_without_zone_and_data_id_is_10_hex(
    hooked: Any, receiver: Receiver
) -> None:
    emu = hooked(MailchimpEmulator())
    seed_ada(emu)

    emu.fire_unsubscribe(ADA)

    fields = dict(parse_qsl(receiver.received[0].body.decode()))
    datetime.strptime(fields["fired_at"], "%Y-%m-%d %H:%M:%S")
    assert len(fields["data[id]"]) == 10
    int(fields["data[id]"], 16)
    assert fields["data[id]"] != subscriber_hash(ADA)


def test_unsubscribe_changes_member_state_as_mailchimp_does(hooked: Any) -> None:
    emu = hooked(MailchimpEmulator())
    seed_ada(emu)
    before = emu.member(ADA)["last_changed"]  # type: ignore[index]

    emu.fire_unsubscribe(ADA, reason="abuse")

    member = emu.member(ADA)
    assert member is not None
    assert member["status"] == "unsubscribed"
    assert member["unsubscribe_reason"]
    assert member["last_changed"] > before


def test_deliver_false_changes_state_but_sends_nothing(hooked: Any, receiver: Receiver) -> None:
    emu = hooked(MailchimpEmulator())
    seed_ada(emu)

    deliveries = emu.fire_unsubscribe(ADA, deliver=False)

    assert deliveries == []
    assert receiver.received == []
    assert emu.member(ADA)["status"] == "unsubscribed"  # type: ignore[index]


def test_disabled_event_is_not_delivered(hooked: Any, receiver: Receiver) -> None:
    emu = hooked(MailchimpEmulator())
    hook_id = emu.audience.webhooks.all()["webhooks"][0]["id"]
    emu.audience.webhooks.update(hook_id, {"events": {"cleaned": False}})
    seed_ada(emu)

    emu.fire_cleaned(ADA)

    assert receiver.received == []


def test_user_events_skip_webhooks_without_the_user_source(
    hooked: Any, receiver: Receiver
) -> None:
    emu = hooked(MailchimpEmulator(), user=False)
    seed_ada(emu)

    emu.fire_unsubscribe(ADA)

    assert receiver.received == []


def test_admin_events_reach_webhooks_with_the_admin_source(
    hooked: Any, receiver: Receiver
) -> None:
    emu = hooked(MailchimpEmulator(), user=False)
    seed_ada(emu)

    emu.fire_unsubscribe(ADA, source="admin")

    assert len(receiver.received) == 1


def test_failed_delivery_returns_its_status_and_can_be_redelivered(
    hooked: Any, receiver: Receiver
) -> None:
    emu = hooked(MailchimpEmulator())
    seed_ada(emu)
    receiver.status = 503

    first = emu.fire_unsubscribe(ADA)
    receiver.status = 200
    retry = emu.redeliver_failed()

    assert [d.status for d in first] == [503]
    assert [d.status for d in retry] == [200]
    assert receiver.received[0].body == receiver.received[1].body


def test_api_writes_echo_to_webhooks_with_the_api_source(
    hooked: Any, receiver: Receiver
) -> None:
    emu = hooked(MailchimpEmulator(), api=True)
    seed_ada(emu)

    requests.put(f"{emu.base_url}/lists/{emu.list_id}/members/{subscriber_hash(ADA)}",
                 auth=("u", emu.api_key), json={"email_address": ADA, "status": "unsubscribed"},
                 timeout=5)

    received = receiver.wait(1)
    assert dict(parse_qsl(received[0].body.decode()))["type"] == "unsubscribe"


def test_api_writes_do_not_echo_to_webhooks_without_the_api_source(
    hooked: Any, receiver: Receiver
) -> None:
    emu = hooked(MailchimpEmulator(), api=False)
    seed_ada(emu)

    requests.put(f"{emu.base_url}/lists/{emu.list_id}/members/{subscriber_hash(ADA)}",
                 auth=("u", emu.api_key), json={"email_address": ADA, "status": "unsubscribed"},
                 timeout=5)

    assert receiver.wait(1, timeout=0.3) == []


def test_firing_for_an_unknown_address_raises_lookup_error(emu: MailchimpEmulator) -> None:
    with pytest.raises(LookupError):
        emu.fire_unsubscribe("nobody@example.com")


def test_by_default_a_webhook_url_nobody_serves_is_refused_as_mailchimp_does(
    client: Any, emu: MailchimpEmulator
) -> None:
    # Mailchimp GETs the URL when the webhook is saved: `serve` must be reachable first.
    with pytest.raises(ApiClientError) as exc:
        client.lists.create_list_webhook(emu.list_id, {"url": "http://127.0.0.1:9/hook"})

    assert exc.value.status_code == 400
    assert client.lists.get_list_webhooks(emu.list_id)["total_items"] == 0
