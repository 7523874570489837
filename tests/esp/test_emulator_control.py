"""The `/_emulator/` control surface, for tests and tools in other processes."""

from __future__ import annotations

from typing import Any

import requests

from mailchimp_emulator import MailchimpEmulator, subscriber_hash
from tests.esp.conftest import Receiver


def control(emu: MailchimpEmulator, method: str, name: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{emu.control_url}/{name}", timeout=5, **kwargs)


def test_health_tells_base_url_list_id_and_key(emu: MailchimpEmulator) -> None:
    doc = control(emu, "GET", "health").json()

    assert doc == {"base_url": emu.base_url, "list_id": emu.list_id, "api_key": emu.api_key}


def test_control_needs_no_auth_and_is_not_counted(emu: MailchimpEmulator) -> None:
    control(emu, "GET", "stats")

    assert control(emu, "GET", "stats").json()["calls"] == {}


def test_stats_report_calls(client: Any, emu: MailchimpEmulator) -> None:
    client.ping.get()

    doc = control(emu, "GET", "stats").json()

    assert doc["calls"] == {"GET ping": 1}
    assert doc["peak_concurrency"] == 1


def test_stats_reset(client: Any, emu: MailchimpEmulator) -> None:
    client.ping.get()

    assert control(emu, "POST", "stats/reset").status_code == 204
    assert emu.stats.calls == {}


def test_seed_and_read_members(emu: MailchimpEmulator) -> None:
    control(emu, "POST", "members", json={"members": [
        {"email_address": "ada@example.com", "status": "unsubscribed",
         "merge_fields": {"FNAME": "Ada"}}]})

    listed = control(emu, "GET", "members", params={"status": "unsubscribed"}).json()

    assert [m["email_address"] for m in listed["members"]] == ["ada@example.com"]


def test_address_view_shows_member_mails_and_forgotten(client: Any, emu: MailchimpEmulator) -> None:
    client.lists.set_list_member(emu.list_id, subscriber_hash("ada@example.com"),
                                 {"email_address": "ada@example.com", "status_if_new": "pending"})

    doc = control(emu, "GET", "addresses/ada@example.com").json()

    assert doc["member"]["status"] == "pending"
    assert (doc["confirmation_mails_sent"], doc["forgotten"]) == (1, False)


def test_reset_empties_the_audience(emu: MailchimpEmulator) -> None:
    emu.seed_member("ada@example.com")

    control(emu, "POST", "reset")

    assert emu.members() == []


def test_reset_restores_constructor_settings(emu: MailchimpEmulator) -> None:
    emu.configure(allow_api_resubscribe=True)
    emu.set_latency(50)
    emu.set_max_connections(2)

    control(emu, "POST", "reset")

    assert (emu.audience.rules.allow_api_resubscribe, emu.latency_ms, emu.max_connections) == (
        False, 0, 10)


def test_settings_change_rules_latency_and_limit(emu: MailchimpEmulator) -> None:
    doc = control(emu, "PUT", "settings", json={
        "allow_api_resubscribe": True, "latency_ms": 5, "max_connections": 3,
        "required_merge_fields": ["FNAME"]}).json()

    assert (doc["allow_api_resubscribe"], doc["latency_ms"], doc["max_connections"]) == (
        True, 5, 3)
    assert emu.audience.rules.required_merge_fields == ("FNAME",)


def test_unknown_setting_is_rejected(emu: MailchimpEmulator) -> None:
    assert control(emu, "PUT", "settings", json={"latency": 5}).status_code == 400


def test_latency_endpoint_sets_latency(emu: MailchimpEmulator) -> None:
    control(emu, "PUT", "latency", json={"ms": 20})

    assert emu.latency_ms == 20


def test_inject_list_and_clear_faults(client: Any, emu: MailchimpEmulator) -> None:
    control(emu, "POST", "faults", json={"kind": "403_bodyless", "count": 2, "match": "ping"})

    pending = control(emu, "GET", "faults").json()["faults"]
    first = client.ping.get()
    control(emu, "DELETE", "faults")

    assert pending[0]["kind"] == "403_bodyless"
    assert first.status_code == 403
    assert client.ping.get()["health_status"] == "Everything's Chimpy!"


def test_unknown_fault_kind_is_rejected(emu: MailchimpEmulator) -> None:
    assert control(emu, "POST", "faults", json={"kind": "teapot"}).status_code == 400


def test_fire_unsubscribe_delivers_and_reports(emu: MailchimpEmulator, receiver: Receiver) -> None:
    emu.audience.webhooks.add({"url": receiver.url})
    emu.seed_member("ada@example.com")

    doc = control(emu, "POST", "fire/unsubscribe",
                  json={"email": "ada@example.com", "reason": "abuse"}).json()

    assert [d["status"] for d in doc["deliveries"]] == [200]
    assert emu.member("ada@example.com")["status"] == "unsubscribed"  # type: ignore[index]


def test_fire_without_delivery_simulates_a_lost_webhook(
    emu: MailchimpEmulator, receiver: Receiver
) -> None:
    emu.audience.webhooks.add({"url": receiver.url})
    emu.seed_member("ada@example.com")

    doc = control(emu, "POST", "fire/cleaned",
                  json={"email": "ada@example.com", "deliver": False}).json()

    assert doc == {"deliveries": []}
    assert receiver.received == []


def test_fire_for_unknown_member_is_404(emu: MailchimpEmulator) -> None:
    answer = control(emu, "POST", "fire/unsubscribe", json={"email": "nobody@example.com"})

    assert answer.status_code == 404


def test_control_is_off_when_not_bound_to_loopback() -> None:
    emu = MailchimpEmulator(host="0.0.0.0")  # never started: dispatch only

    reply = emu.dispatch("GET", "/_emulator/stats", None, b"")

    assert reply.status == 404
