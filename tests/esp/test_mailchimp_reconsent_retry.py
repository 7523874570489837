"""A re-consent (`pending`) write is never repeated blindly: after a failure that may have
landed, the client reads the member before each retry (HTTP edge cases via `responses`)."""

from __future__ import annotations

import pytest
import requests
import responses

from syncd.addresses import subscriber_hash
from syncd.esp.errors import EspTransientError
from syncd.esp.mailchimp import MailchimpClient
from syncd.esp.protocol import MemberData

BASE = "https://us14.api.mailchimp.com/3.0"
AUDIENCE = "f1243a3b12"
MEMBER = f"{BASE}/lists/{AUDIENCE}/members/{subscriber_hash('ada@example.org')}"


def client(max_retries: int = 3) -> MailchimpClient:
    return MailchimpClient(api_key="0123456789abcdef0123456789abcdef-us14",
                           audience_id=AUDIENCE, base_url=BASE, max_retries=max_retries,
                           retry_max_wait_seconds=0.01)


def methods() -> list[str]:
    return [str(call.request.method) for call in responses.calls]


@responses.activate
def test_pending_that_landed_despite_a_timeout_is_not_sent_again() -> None:
    responses.patch(MEMBER, body=requests.ReadTimeout("slow"))
    responses.get(MEMBER, json={"email_address": "ada@example.org", "status": "pending",
                                "last_changed": "2026-01-01T00:00:00+00:00"})

    result = client().update_member(MemberData("ada@example.org"), status="pending")

    assert (result.outcome, result.status) == ("written", "pending")
    assert methods() == ["PATCH", "GET"]


@responses.activate
def test_pending_that_did_not_land_is_sent_again_after_the_check() -> None:
    responses.patch(MEMBER, status=503, body="<html>busy</html>", content_type="text/html")
    responses.get(MEMBER, json={"email_address": "ada@example.org", "status": "unsubscribed",
                                "last_changed": "2026-01-01T00:00:00+00:00"})
    responses.patch(MEMBER, json={"email_address": "ada@example.org", "status": "pending"})

    result = client().upsert_member(MemberData("ada@example.org"), status_if_new="pending",
                                    status="pending")

    assert (result.outcome, result.status) == ("written", "pending")
    assert methods() == ["PATCH", "GET", "PATCH"]


@responses.activate
def test_pending_retries_are_capped_with_a_check_before_each() -> None:
    responses.patch(MEMBER, body=requests.ConnectionError("reset by peer"))
    responses.get(MEMBER, json={"email_address": "ada@example.org", "status": "unsubscribed",
                                "last_changed": "2026-01-01T00:00:00+00:00"})

    with pytest.raises(EspTransientError):
        client(max_retries=2).update_member(MemberData("ada@example.org"), status="pending")
    assert methods() == ["PATCH", "GET", "PATCH", "GET", "PATCH"]
