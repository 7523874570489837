"""Webhook registration and its check at the emulator, for the cases the registration
tests leave open: no secret configured, other applications' webhooks, a source switched
off and a webhook of ours whose URL is no longer acceptable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.context import AppContext
from syncd.errors import InputError
from syncd.esp.mailchimp import MailchimpClient, mailchimp_client
from syncd.webhooks.registration import EVENTS, SOURCES, check, register
from tests.conftest import TEST_OLD_WEBHOOK_SECRET, TEST_WEBHOOK_SECRET

SECRETS = [TEST_WEBHOOK_SECRET, TEST_OLD_WEBHOOK_SECRET]
URL = f"https://crm.example.org/webhooks/mailchimp/{TEST_WEBHOOK_SECRET}"
ELSEWHERE = "https://shop.example.org/hooks/mailchimp-orders"


@pytest.fixture
def client(emulated_context: AppContext) -> Iterator[MailchimpClient]:
    esp = mailchimp_client(emulated_context.settings)
    yield esp
    esp.close()


def test_register_refuses_when_no_webhook_secret_is_configured(
        client: MailchimpClient) -> None:
    with pytest.raises(InputError, match="no webhook secret is configured"):
        register(client, URL, [])
    assert client.list_webhooks() == []


def test_another_applications_webhook_is_left_alone_by_register(
        client: MailchimpClient) -> None:
    client.create_webhook(ELSEWHERE, EVENTS, {**SOURCES, "api": True})

    assert register(client, URL, SECRETS).created
    assert sorted(h.url for h in client.list_webhooks()) == sorted([URL, ELSEWHERE])


def test_check_reports_another_webhook_with_api_source_on(client: MailchimpClient) -> None:
    # syncd's own writes would echo back to that application.
    register(client, URL, SECRETS)
    client.create_webhook(ELSEWHERE, EVENTS, {**SOURCES, "api": True})

    problems = [p.problem for p in check(client, SECRETS)[1]]

    assert problems == ["another webhook has source api on: syncd's own writes echo back to it"]


def test_check_finds_nothing_wrong_with_another_applications_webhook(
        client: MailchimpClient) -> None:
    register(client, URL, SECRETS)
    client.create_webhook(ELSEWHERE, EVENTS, SOURCES)

    assert check(client, SECRETS)[1] == []


def test_check_reports_a_source_switched_off(client: MailchimpClient) -> None:
    hook = register(client, URL, SECRETS).webhook
    client.update_webhook(hook.id, URL, EVENTS, {**SOURCES, "admin": False})

    assert [p.problem for p in check(client, SECRETS)[1]] == ["sources off: admin"]


def test_check_reports_a_webhook_of_ours_on_plain_http(client: MailchimpClient) -> None:
    plain = URL.replace("https://", "http://")
    client.create_webhook(plain, EVENTS, SOURCES)

    ours, problems = check(client, SECRETS)

    assert [h.url for h in ours] == [plain]
    assert [p.problem for p in problems] == [
        "webhook URL must use https (http is allowed only for 127.0.0.1 and localhost)"]
    assert all(TEST_WEBHOOK_SECRET not in p.url for p in problems)
