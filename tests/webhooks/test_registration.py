"""Registering the audience webhook at the emulator: api source off, member events on,
https (or loopback) URL ending in a configured secret; `check` finds what is wrong."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.errors import InputError
from syncd.esp.mailchimp import MailchimpClient, mailchimp_client
from syncd.sync.run import run_sync
from syncd.webhooks.registration import EVENTS, SOURCES, check, masked_url, register
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_OLD_WEBHOOK_SECRET, TEST_WEBHOOK_SECRET
from tests.reconcile.conftest import write_config
from tests.webhooks.conftest import Served, inbox_rows
from tests.webhooks.snapshot import person

SECRETS = [TEST_WEBHOOK_SECRET, TEST_OLD_WEBHOOK_SECRET]
URL = f"https://crm.example.org/webhooks/mailchimp/{TEST_WEBHOOK_SECRET}"


@pytest.fixture
def client(emulated_context: AppContext) -> Iterator[MailchimpClient]:
    esp = mailchimp_client(emulated_context.settings)
    yield esp
    esp.close()


def test_register_creates_the_webhook_with_api_source_off(client: MailchimpClient) -> None:
    done = register(client, URL, SECRETS)
    assert done.created
    [hook] = client.list_webhooks()
    assert hook.url == URL
    assert dict(hook.sources) == SOURCES
    assert dict(hook.events) == EVENTS
    assert check(client, SECRETS)[1] == []


def test_register_twice_updates_instead_of_duplicating(client: MailchimpClient) -> None:
    register(client, URL, SECRETS)
    client.update_webhook(client.list_webhooks()[0].id, URL, EVENTS, {**SOURCES, "api": True})
    rotated = URL.replace(TEST_WEBHOOK_SECRET, TEST_OLD_WEBHOOK_SECRET)
    assert not register(client, rotated, SECRETS).created
    [hook] = client.list_webhooks()
    assert (hook.url, hook.sources["api"]) == (rotated, False)


@pytest.mark.parametrize(("url", "problem"), [
    (f"http://crm.example.org/webhooks/mailchimp/{TEST_WEBHOOK_SECRET}", "https"),
    ("https://crm.example.org/webhooks/mailchimp/not-a-configured-secret", "secret"),
    ("https://crm.example.org/webhooks/mailchimp", "secret"),
    (f"https://crm.example.org/webhooks/mailchimp/{TEST_WEBHOOK_SECRET}?x=1", "query"),
    ("ftp://crm.example.org/x", "https"),
])
def test_register_refuses_a_bad_url_without_printing_the_secret(
        client: MailchimpClient, url: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as caught:
        register(client, url, SECRETS)
    assert TEST_WEBHOOK_SECRET not in str(caught.value)
    assert client.list_webhooks() == []


def test_http_is_allowed_for_loopback(client: MailchimpClient) -> None:
    assert register(client, f"http://127.0.0.1:8080/webhooks/mailchimp/{TEST_WEBHOOK_SECRET}",
                    SECRETS).created


def test_check_reports_a_missing_webhook(client: MailchimpClient) -> None:
    ours, problems = check(client, SECRETS)
    assert ours == []
    assert [p.problem for p in problems] == [
        "no audience webhook carries a configured secret "
        "(run `syncd webhooks register --url …`)"]


def test_check_reports_api_source_and_missing_events(client: MailchimpClient) -> None:
    hook = register(client, URL, SECRETS).webhook
    client.update_webhook(hook.id, URL, {**EVENTS, "upemail": False, "cleaned": False},
                          {**SOURCES, "api": True})
    problems = [p.problem for p in check(client, SECRETS)[1]]
    assert any("source api is on" in p for p in problems)
    assert "events off: cleaned, upemail" in problems


def test_check_reports_a_url_with_a_rotated_out_secret(client: MailchimpClient) -> None:
    client.create_webhook("https://crm.example.org/webhooks/mailchimp/retired-secret-000000",
                          EVENTS, SOURCES)
    problems = check(client, SECRETS)[1]
    assert any("rotated out" in p.problem for p in problems)
    assert all("retired-secret-000000" not in p.url for p in problems)


def test_masked_url_hides_the_secret() -> None:
    shown = masked_url(URL)
    assert TEST_WEBHOOK_SECRET not in shown
    assert shown.startswith("https://crm.example.org/webhooks/mailchimp/")


def test_registered_endpoint_receives_and_purges(
        emulated_context: AppContext, emulator: MailchimpEmulator, client: MailchimpClient,
        served_for: Callable[[AppContext], Served]) -> None:
    emulator.configure(validate_webhook_urls=True)  # Mailchimp's validator GET on save
    served = served_for(emulated_context)
    register(client, served.url(), SECRETS)
    add_contact(emulated_context, "ada.lovelace@example.com", events=confirmed(),
                lists=["newsletter-nl"])
    run_sync(emulated_context)
    assert inbox_rows(emulated_context) == []  # api source off: our own writes do not echo
    [delivery] = emulator.fire_unsubscribe("ada.lovelace@example.com")
    assert delivery.status == 200
    assert person(emulated_context, "ada.lovelace@example.com").lists == ()


def test_cli_register_masks_the_secret_and_check_passes(
        tmp_path: Path, database_url: str, emulator: MailchimpEmulator,
        emulated_context: AppContext) -> None:
    from typer.testing import CliRunner

    from syncd.cli import _register_all, app

    if not any(group.name == "webhooks" for group in app.registered_groups):
        _register_all()
    config = str(write_config(tmp_path / "syncd.toml", database_url, emulator))
    registered = CliRunner().invoke(app, ["--config", config, "webhooks", "register",
                                          "--url", URL])
    assert registered.exit_code == 0, registered.output
    assert "created" in registered.output
    assert TEST_WEBHOOK_SECRET not in registered.output
    checked = CliRunner().invoke(app, ["--config", config, "webhooks", "check"])
    assert (checked.exit_code, TEST_WEBHOOK_SECRET in checked.output) == (0, False)
    refused = CliRunner().invoke(app, ["--config", config, "webhooks", "register", "--url",
                                       "https://crm.example.org/webhooks/mailchimp/guess-000"])
    assert refused.exit_code == 3


def test_cli_check_fails_on_a_bad_config(tmp_path: Path, database_url: str,
                                         emulator: MailchimpEmulator, client: MailchimpClient,
                                         emulated_context: AppContext) -> None:
    from typer.testing import CliRunner

    from syncd.cli import _register_all, app

    if not any(group.name == "webhooks" for group in app.registered_groups):
        _register_all()
    client.create_webhook(URL, EVENTS, {**SOURCES, "api": True})
    config = str(write_config(tmp_path / "syncd.toml", database_url, emulator))
    checked = CliRunner().invoke(app, ["--config", config, "webhooks", "check", "--json"])
    assert checked.exit_code == 1  # misconfigured: FAILED (issue 11: not PARTIAL)
    assert "source api is on" in checked.output
    assert TEST_WEBHOOK_SECRET not in checked.output


def test_cli_check_without_any_webhook_exits_not_found(
        tmp_path: Path, database_url: str, emulator: MailchimpEmulator,
        emulated_context: AppContext) -> None:
    from typer.testing import CliRunner

    from syncd.cli import _register_all, app

    if not any(group.name == "webhooks" for group in app.registered_groups):
        _register_all()
    config = str(write_config(tmp_path / "syncd.toml", database_url, emulator))

    checked = CliRunner().invoke(app, ["--config", config, "webhooks", "check"])

    assert checked.exit_code == 7
    assert "no audience webhook carries a configured secret" in checked.output
