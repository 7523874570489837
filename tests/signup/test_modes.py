"""The two double opt-in modes and their settings: syncd's own (mail through SMTP) and
the ESP's (pushed as pending, Mailchimp mails). One consent never causes two
confirmation mails; a setting that would is refused at start."""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import func, select

from mailchimp_emulator import MailchimpEmulator
from syncd.config import load_settings
from syncd.context import AppContext
from syncd.errors import ConfigError
from syncd.schema import OutboxMail
from syncd.service.app import create_app
from syncd.sync.run import run_sync
from tests.conftest import emulated_settings, make_settings
from tests.service.conftest import served
from tests.signup.conftest import good_form, post_form


def test_esp_mode_sends_no_mail_of_its_own_and_the_sync_pushes_pending(
        database_url: str, emulator: MailchimpEmulator) -> None:
    ctx = AppContext.open(emulated_settings(database_url, emulator,
                                            sync_push_unconfirmed_as_pending=True))
    ctx.sync_lists()
    with served(create_app(ctx, webhooks=False)) as site:
        answer = post_form(site + "/signup", good_form())
    run_sync(ctx)
    with ctx.sessions() as session:
        queued = session.scalar(select(func.count()).select_from(OutboxMail))
    ctx.close()

    assert answer.status_code == 200
    assert queued == 0
    assert emulator.member("ada@example.com")["status"] == "pending"  # type: ignore[index]
    assert emulator.confirmation_mails_sent("ada@example.com") == 1


def test_without_a_mode_the_sign_up_endpoints_are_off(database_url: str) -> None:
    ctx = AppContext.open(make_settings(database_url))
    with served(create_app(ctx, webhooks=False)) as site:
        answer = requests.post(site + "/signup", data=good_form(), timeout=10)
    ctx.close()

    assert answer.status_code == 404


def test_syncd_mode_with_pending_pushes_is_refused_as_two_mails_for_one_sign_up() -> None:
    with pytest.raises(ConfigError, match="two confirmation mails"):
        load_settings(None, signup_double_opt_in="syncd", smtp_host="127.0.0.1",
                      mail_from="a@example.org", public_base_url="https://x.example",
                      sync_push_unconfirmed_as_pending=True)


def test_syncd_mode_without_a_mail_server_names_the_missing_settings() -> None:
    with pytest.raises(ConfigError, match="smtp_host, mail_from, public_base_url"):
        load_settings(None, signup_double_opt_in="syncd")


def test_esp_mode_without_pending_pushes_is_refused() -> None:
    with pytest.raises(ConfigError, match="sync_push_unconfirmed_as_pending"):
        load_settings(None, signup_double_opt_in="esp")


def test_auto_is_syncds_own_double_opt_in_when_a_mail_server_is_set() -> None:
    settings = load_settings(None, smtp_host="127.0.0.1", mail_from="a@example.org",
                             public_base_url="https://x.example")

    assert settings.double_opt_in == "syncd"


def test_short_api_tokens_are_refused() -> None:
    with pytest.raises(ConfigError, match="signup_api_tokens"):
        load_settings(None, signup_api_tokens=["short"])


def test_the_smtp_password_comes_from_its_file(tmp_path: object,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    secret = Path(str(tmp_path)) / "smtp_password"
    secret.write_text("s3cret-from-a-file\n", encoding="utf-8")
    monkeypatch.setenv("SYNCD_SMTP_PASSWORD_FILE", str(secret))

    settings = load_settings(None)

    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == "s3cret-from-a-file"


def test_esp_mode_records_mailchimps_confirmation_from_its_subscribe_webhook(
        database_url: str, emulator: MailchimpEmulator) -> None:
    from syncd.esp.mailchimp import mailchimp_client
    from syncd.schema import ConsentEvent
    from syncd.webhooks import registration
    from tests.conftest import TEST_WEBHOOK_SECRET

    ctx = AppContext.open(emulated_settings(database_url, emulator,
                                            sync_push_unconfirmed_as_pending=True))
    ctx.sync_lists()
    with served(create_app(ctx)) as site:
        client = mailchimp_client(ctx.settings)
        try:
            registration.register(client, f"{site}/webhooks/mailchimp/{TEST_WEBHOOK_SECRET}",
                                  [TEST_WEBHOOK_SECRET])
        finally:
            client.close()
        post_form(site + "/signup", good_form())
        run_sync(ctx)
        # Mailchimp's fired_at has whole seconds: the click comes after the sign-up's second.
        time.sleep(1.1)
        deliveries = emulator.fire_subscribe("ada@example.com", ip_opt="203.0.113.9")
    with ctx.sessions() as session:
        confirmation = session.scalars(select(ConsentEvent).where(
            ConsentEvent.action == "confirmed")).one()
    ctx.close()

    assert [d.status for d in deliveries] == [200]
    assert (confirmation.source, confirmation.ip) == ("esp_webhook", "203.0.113.9")
