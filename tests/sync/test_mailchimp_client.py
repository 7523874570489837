"""HTTP edge cases of the Mailchimp client that the emulator does not produce on its own
(`responses`), and the URL/key rules. Every other path runs against the emulator."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from syncd.addresses import subscriber_hash
from syncd.config import load_settings
from syncd.errors import ConfigError
from syncd.esp.errors import EspConfigurationError, EspPermanentError, EspTransientError
from syncd.esp.mailchimp import MailchimpClient, base_url_for, mailchimp_client
from syncd.esp.mailchimp_responses import RecentSignupsError
from syncd.esp.protocol import MemberData, NewMember
from syncd.metrics import ESP_THROTTLED

BASE = "https://us14.api.mailchimp.com/3.0"
AUDIENCE = "f1243a3b12"
KEY = "0123456789abcdef0123456789abcdef-us14"
PROBLEM = "application/problem+json; charset=utf-8"
MEMBER_URL = f"{BASE}/lists/{AUDIENCE}/members/"


def client(**overrides: object) -> MailchimpClient:
    values: dict[str, object] = {"api_key": KEY, "audience_id": AUDIENCE, "base_url": BASE,
                                 "max_retries": 3, "retry_max_wait_seconds": 0.01}
    values.update(overrides)
    return MailchimpClient(**values)  # type: ignore[arg-type]


def problem(status: int, title: str, detail: str) -> dict[str, object]:
    return {"status": status, "content_type": PROBLEM,
            "body": json.dumps({"type": "x", "title": title, "status": status,
                                "detail": detail, "instance": "i"})}


@responses.activate
def test_bodyless_403_is_throttling_and_is_retried() -> None:
    ping = f"{BASE}/lists/{AUDIENCE}"
    responses.get(ping, status=403, body=b"")
    responses.get(ping, status=429, body=b"")
    responses.get(ping, json={"id": AUDIENCE})
    before = ESP_THROTTLED._value.get()

    client().ping()

    assert len(responses.calls) == 3
    assert ESP_THROTTLED._value.get() - before == 2


@responses.activate
def test_403_with_a_body_is_a_configuration_error() -> None:
    responses.get(f"{BASE}/lists/{AUDIENCE}", **problem(403, "Forbidden", "not allowed"))

    with pytest.raises(EspConfigurationError, match="SYNCD_MAILCHIMP_AUDIENCE_ID"):
        client().ping()
    assert len(responses.calls) == 1


@responses.activate
def test_raw_problem_json_string_is_typed_and_addresses_scrubbed() -> None:
    responses.put(MEMBER_URL + subscriber_hash("ada@example.org"), **problem(
        400, "Member In Compliance State",
        "ada@example.org is in a compliance state due to unsubscribe"))

    result = client().upsert_member(MemberData("ada@example.org"), status_if_new="subscribed")

    assert result.outcome == "failed"
    assert isinstance(result.error, EspPermanentError)
    assert result.error.title == "Member In Compliance State"
    assert "ada@example.org" not in str(result.error)


@responses.activate
def test_timeout_is_transient_and_retries_are_capped() -> None:
    responses.get(f"{BASE}/lists/{AUDIENCE}", body=requests.ReadTimeout("slow"))

    with pytest.raises(EspTransientError, match="timeout"):
        client(max_retries=2).ping()
    assert len(responses.calls) == 3


@responses.activate
def test_connection_reset_then_success() -> None:
    ping = f"{BASE}/lists/{AUDIENCE}"
    responses.get(ping, body=requests.ConnectionError("reset by peer"))
    responses.get(ping, status=503, body="<html>maintenance</html>", content_type="text/html")
    responses.get(ping, json={"id": AUDIENCE})

    client().ping()

    assert len(responses.calls) == 3


@responses.activate
def test_401_fails_at_once_naming_the_key_setting() -> None:
    responses.get(f"{BASE}/lists/{AUDIENCE}", **problem(401, "API Key Invalid", "bad key"))

    with pytest.raises(EspConfigurationError, match="SYNCD_MAILCHIMP_API_KEY") as caught:
        client().ping()
    assert KEY not in str(caught.value)
    assert len(responses.calls) == 1


@responses.activate
def test_recent_signups_refusal_is_not_retried_within_the_run() -> None:
    responses.post(f"{BASE}/lists/{AUDIENCE}", json={
        "new_members": [], "updated_members": [], "error_count": 1, "errors": [{
            "email_address": "ada@example.org", "error_code": "ERROR_GENERIC",
            "error": "ada@example.org has signed up to a lot of lists very recently; "
                     "we're not allowing more signups for now"}]})

    [result] = client().push_batch([NewMember(MemberData("ada@example.org"), "subscribed")])

    assert isinstance(result.error, RecentSignupsError)
    assert len(responses.calls) == 1


@responses.activate
def test_batch_asks_only_for_the_fields_it_reads_and_never_updates_existing() -> None:
    responses.post(f"{BASE}/lists/{AUDIENCE}", json={
        "new_members": [{"email_address": "ada@example.org", "status": "subscribed"}],
        "updated_members": [], "errors": [], "error_count": 0})

    client().push_batch([NewMember(MemberData("ada@example.org", tags=("t",)), "subscribed")])

    sent = json.loads(responses.calls[0].request.body)
    assert sent["update_existing"] is False
    assert sent["members"][0]["tags"] == ["t"]
    assert "fields=new_members.email_address" in responses.calls[0].request.url


@responses.activate
def test_server_in_the_path_is_not_replaced() -> None:
    # The stock client replaces EVERY "server" in the URL with the datacenter.
    responses.get(f"{BASE}/lists/server1234", json={"id": "server1234"})

    client(audience_id="server1234").ping()

    assert responses.calls[0].request.url.startswith(f"{BASE}/lists/server1234")


def test_base_url_comes_from_the_key_datacenter() -> None:
    settings = load_settings(None, mailchimp_api_key=KEY, mailchimp_audience_id=AUDIENCE)

    assert base_url_for(settings) == BASE


def test_base_url_setting_overrides_the_datacenter() -> None:
    settings = load_settings(None, mailchimp_api_key="nodatacenter",
                             mailchimp_audience_id=AUDIENCE,
                             mailchimp_base_url="http://127.0.0.1:9/3.0")

    assert mailchimp_client(settings).base_url == "http://127.0.0.1:9/3.0"


def test_key_without_datacenter_is_a_config_error_naming_the_setting() -> None:
    settings = load_settings(None, mailchimp_api_key="0123456789abcdef",
                             mailchimp_audience_id=AUDIENCE)

    with pytest.raises(ConfigError, match="SYNCD_MAILCHIMP_API_KEY") as caught:
        mailchimp_client(settings)
    assert "0123456789abcdef" not in str(caught.value)
