"""The secret in the URL: compared in constant time with every configured secret; a
forged one stores nothing; rotation keeps old and new working; no log line shows it."""

from __future__ import annotations

import io
import json

import pytest
import requests

from syncd import logs
from syncd.context import AppContext
from syncd.service.credentials import secret_digest as _secret_digest
from syncd.service.credentials import secret_matches
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_OLD_WEBHOOK_SECRET, TEST_WEBHOOK_SECRET, fixture_body
from tests.webhooks.conftest import FORM, Served, inbox_rows

FORGED = {
    "wrong": "not-the-secret-at-all-0123456789",
    "short": TEST_WEBHOOK_SECRET[:4],
    "prefix-sharing": TEST_WEBHOOK_SECRET[:-1],
    "extended": TEST_WEBHOOK_SECRET + "0",
    "rotated-out": "retired-secret-from-last-year-000",
    "case-changed": TEST_WEBHOOK_SECRET.upper(),
}


@pytest.mark.parametrize("kind", sorted(FORGED))
def test_forged_secret_is_401_and_stores_nothing(served: Served, app_context: AppContext,
                                                 kind: str) -> None:
    add_contact(app_context, "ada.lovelace@example.com", events=confirmed(),
                lists=["newsletter-nl"])
    response = served.deliver("unsubscribe.form", secret=FORGED[kind])
    assert response.status_code == 401
    assert FORGED[kind].encode() not in response.content
    assert inbox_rows(app_context) == []


@pytest.mark.parametrize("path", ["/webhooks/mailchimp", "/webhooks/mailchimp/"])
def test_missing_secret_is_401_and_stores_nothing(served: Served, app_context: AppContext,
                                                  path: str) -> None:
    response = requests.post(served.base_url + path, data=fixture_body("unsubscribe.form"),
                             headers=FORM, timeout=10, allow_redirects=False)
    assert response.status_code == 401
    assert inbox_rows(app_context) == []


def test_forged_secret_gets_no_validator_answer(served: Served) -> None:
    assert requests.get(served.url("wrong-secret-0123456789abcdef"), timeout=10).status_code == 401


@pytest.mark.parametrize("secret", [TEST_WEBHOOK_SECRET, TEST_OLD_WEBHOOK_SECRET])
def test_both_configured_secrets_work_during_rotation(served: Served, app_context: AppContext,
                                                      secret: str) -> None:
    assert served.deliver("unsubscribe.form", secret=secret).status_code == 200
    assert len(inbox_rows(app_context)) == 1


def test_every_secret_is_compared_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    from syncd.service import credentials as endpoint

    compared: list[bytes] = []
    real = endpoint.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(endpoint.hmac, "compare_digest", counting)
    digests = tuple(_secret_digest(s) for s in ("a" * 16, "b" * 16, "c" * 16))
    assert secret_matches("a" * 16, digests)
    assert compared == list(digests)


def test_no_log_line_holds_the_secret_or_an_address(served: Served,
                                                    app_context: AppContext) -> None:
    stream = io.StringIO()
    logs.configure(level="debug", fmt="json", stream=stream)
    try:
        add_contact(app_context, "ada.lovelace@example.com", events=confirmed(),
                    lists=["newsletter-nl"])
        served.deliver("unsubscribe.form")
        served.deliver("unsubscribe.form")
        served.deliver("unsubscribe.form", secret="wrong-secret-0123456789abcdef")
        served.post(fixture_body("unsubscribe.form").replace(b"type=unsubscribe&", b""))
        served.post(fixture_body("unsubscribe.form").replace(
            b"ada.lovelace%40example.com", b""))
    finally:
        logs.configure(level="warning", fmt="json")
    text = stream.getvalue()
    assert text  # something was logged, so the check below means something
    for line in text.splitlines():
        json.loads(line)
    for leaked in (TEST_WEBHOOK_SECRET, "ada.lovelace", "ada.lovelace%40example.com"):
        assert leaked not in text
