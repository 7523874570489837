"""The confirmation link: a GET shows a button and changes nothing (mail scanners fetch
every link); the POST confirms once with its own evidence; used, expired and forged
links get a clear page and change nothing; the next sync pushes the person."""

from __future__ import annotations

from datetime import timedelta

import requests
from sqlalchemy import select, update

from mailchimp_emulator import MailchimpEmulator
from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.schema import ConsentEvent, SignupToken
from syncd.service.app import create_app
from syncd.signup.tokens import token_hash
from syncd.sync.run import run_sync
from tests.conftest import emulated_settings
from tests.service.conftest import served
from tests.signup.conftest import local, signed_up, signup_settings
from tests.smtp_sink import SmtpSink, link_in


def _actions(ctx: AppContext) -> list[str]:
    with ctx.sessions() as session:
        return list(session.scalars(select(ConsentEvent.action).order_by(ConsentEvent.id)))


def test_opening_the_link_shows_a_button_and_confirms_nothing(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    link = local(link_in(signed_up(site, signup_ctx, smtp), "confirm"), site)

    page = requests.get(link, timeout=10)

    assert page.status_code == 200
    assert '<form method="post"' in page.text
    assert "<button" in page.text
    assert _actions(signup_ctx) == ["given"]
    with signup_ctx.sessions() as session:
        assert session.scalars(select(SignupToken.used_at)).one() is None


def test_the_button_records_confirmed_with_its_own_ip_user_agent_and_token_hash(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    link = local(link_in(signed_up(site, signup_ctx, smtp), "confirm"), site)

    answer = requests.post(link, headers={"User-Agent": "Clicker/1"}, timeout=10)

    assert answer.status_code == 200
    assert "/preferences/" in answer.text  # the "you are subscribed" page carries it
    with signup_ctx.sessions() as session:
        event = session.scalars(select(ConsentEvent).where(
            ConsentEvent.action == "confirmed")).one()
    assert (event.source, event.ip, event.user_agent) == (
        "confirmation_link", "127.0.0.1", "Clicker/1")
    assert event.confirmation_token_hash == token_hash(link.rsplit("/", 1)[1])


def test_a_confirmed_sign_up_joins_the_configured_sign_up_list(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    link = local(link_in(signed_up(site, signup_ctx, smtp), "confirm"), site)

    requests.post(link, timeout=10)

    with signup_ctx.sessions() as session:
        contact = store.find_contact(session, "ada@example.com")
        assert contact is not None
        assert store.list_names(session, contact.id) == ["newsletter-nl"]


def test_a_used_link_gets_a_clear_page_and_changes_nothing(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    link = local(link_in(signed_up(site, signup_ctx, smtp), "confirm"), site)
    requests.post(link, timeout=10)

    again = requests.post(link, headers={"Accept-Language": "en"}, timeout=10)
    shown = requests.get(link, headers={"Accept-Language": "en"}, timeout=10)

    assert (again.status_code, shown.status_code) == (410, 410)
    assert "was used already" in again.text
    assert _actions(signup_ctx) == ["given", "confirmed"]


def test_an_expired_link_gets_a_clear_page_and_changes_nothing(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    link = local(link_in(signed_up(site, signup_ctx, smtp), "confirm"), site)
    with transaction(signup_ctx.sessions) as session:
        session.execute(update(SignupToken).values(expires_at=utcnow() - timedelta(seconds=1)))

    answer = requests.post(link, headers={"Accept-Language": "en"}, timeout=10)

    assert answer.status_code == 410
    assert "has expired" in answer.text
    assert _actions(signup_ctx) == ["given"]


def test_a_forged_link_gets_a_clear_page_and_changes_nothing(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    real = link_in(signed_up(site, signup_ctx, smtp), "confirm").rsplit("/", 1)[1]
    forged_token = real[:-1] + ("A" if real[-1] != "A" else "B")

    answers = [requests.post(f"{site}/confirm/{token}", headers={"Accept-Language": "en"},
                             timeout=10)
               for token in (forged_token, "short", "x" * 43 + "'--", "%00" * 10)]

    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert "not valid" in answers[0].text
    assert _actions(signup_ctx) == ["given"]


def test_the_next_sync_pushes_the_confirmed_person_subscribed_with_opt_in_proof(
        database_url: str, smtp: SmtpSink, emulator: MailchimpEmulator) -> None:
    settings = emulated_settings(database_url, emulator, **signup_settings(
        database_url, smtp).model_dump(include={"smtp_host", "smtp_port", "smtp_starttls",
                                                "mail_from", "public_base_url",
                                                "signup_lists"}))
    ctx = AppContext.open(settings)
    ctx.sync_lists()
    with served(create_app(ctx, webhooks=False)) as site:
        link = local(link_in(signed_up(site, ctx, smtp), "confirm"), site)
        assert run_sync(ctx).counts()["added"] == 0  # given, not confirmed: nobody pushed
        requests.post(link, timeout=10)
    run_sync(ctx)
    ctx.close()

    member = emulator.member("ada@example.com")
    assert member is not None
    assert member["status"] == "subscribed"
    assert member["ip_opt"] == "127.0.0.1"
    assert member["timestamp_opt"]
    assert member["ip_signup"] == "127.0.0.1"
    assert member["timestamp_signup"]
    assert emulator.confirmation_mails_sent("ada@example.com") == 0  # one mail: syncd's
