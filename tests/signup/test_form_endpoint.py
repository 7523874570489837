"""POST /signup, the plain HTML form: every answer (recorded, refused, nothing ticked,
bot trap, limited, too large, wrong type), each checked against what was written."""

from __future__ import annotations

import requests
from sqlalchemy import func, select

from syncd.context import AppContext
from syncd.schema import ConsentEvent, Contact, OutboxMail, SignupToken
from syncd.service.app import create_app
from tests.builders import add_contact
from tests.service.conftest import served
from tests.signup.conftest import good_form, post_form, signup_settings
from tests.smtp_sink import SmtpSink


def _count(ctx: AppContext, table: type) -> int:
    with ctx.sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def _events(ctx: AppContext) -> list[ConsentEvent]:
    with ctx.sessions() as session:
        return list(session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)))


def test_a_sign_up_records_given_with_the_evidence_of_rule_4(
        site: str, signup_ctx: AppContext) -> None:
    answer = post_form(site + "/signup", good_form(), **{"User-Agent": "Firefox/140"})

    assert answer.status_code == 200
    [event] = _events(signup_ctx)
    assert (event.purpose, event.action, event.source) == ("newsletter", "given", "web_form")
    assert (event.ip, event.user_agent) == ("127.0.0.1", "Firefox/140")
    assert (event.form_url, event.text_version, event.privacy_notice_version) == (
        "https://example.org/join", "form-v3", "2026-01")


def test_a_sign_up_queues_one_confirmation_mail_and_answers_before_sending_it(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    post_form(site + "/signup", good_form(purposes=["newsletter", "events"]))

    with signup_ctx.sessions() as session:
        [mail] = session.scalars(select(OutboxMail)).all()
    assert (mail.kind, mail.status, sorted(mail.purposes)) == (
        "confirmation", "queued", ["events", "newsletter"])
    assert smtp.messages == []  # the answer came first; the outbox job sends


def test_a_pre_ticked_box_is_refused_with_422_saying_why_and_nothing_is_written(
        site: str, signup_ctx: AppContext) -> None:
    answer = post_form(site + "/signup", good_form(prechecked="True"))

    assert answer.status_code == 422
    assert "pre-ticked box is not consent" in answer.text
    assert (_count(signup_ctx, Contact), _count(signup_ctx, ConsentEvent)) == (0, 0)


def test_an_unknown_purpose_is_refused_naming_the_field(
        site: str, signup_ctx: AppContext) -> None:
    answer = post_form(site + "/signup", good_form(purposes=["newsletter", "lottery"]))

    assert answer.status_code == 422
    assert "<strong>purposes</strong>" in answer.text
    assert "lottery" in answer.text
    assert _count(signup_ctx, ConsentEvent) == 0


def test_a_bad_address_is_refused_naming_the_email_field_without_repeating_it(
        site: str, signup_ctx: AppContext) -> None:
    answer = post_form(site + "/signup", good_form(email="ada@@example"))

    assert answer.status_code == 422
    assert "<strong>email</strong>" in answer.text
    assert "ada@@example" not in answer.text
    assert _count(signup_ctx, Contact) == 0


def test_missing_text_versions_are_refused_naming_each_field(site: str) -> None:
    form = good_form()
    del form["text_version"], form["privacy_notice_version"]

    answer = post_form(site + "/signup", form)

    assert answer.status_code == 422
    assert "<strong>text_version</strong>" in answer.text
    assert "<strong>privacy_notice_version</strong>" in answer.text


def test_ticking_nothing_records_nothing_and_says_so(site: str, signup_ctx: AppContext) -> None:
    answer = post_form(site + "/signup", good_form(purposes=[]))

    assert answer.status_code == 200
    assert "Er is niets vastgelegd" in answer.text
    assert (_count(signup_ctx, Contact), _count(signup_ctx, OutboxMail)) == (0, 0)


def test_the_honeypot_is_answered_like_a_success_and_records_nothing(
        site: str, signup_ctx: AppContext) -> None:
    real = post_form(site + "/signup", good_form("real@example.com"))
    bot = post_form(site + "/signup", good_form("bot@example.com", website="http://spam"))

    assert (bot.status_code, bot.text) == (real.status_code, real.text)
    with signup_ctx.sessions() as session:
        assert session.scalars(select(Contact.email_key)).all() == ["real@example.com"]


def test_the_answer_is_the_same_for_a_known_and_an_unknown_address(
        site: str, signup_ctx: AppContext) -> None:
    add_contact(signup_ctx, "known@example.com")

    known = post_form(site + "/signup", good_form("known@example.com"))
    unknown = post_form(site + "/signup", good_form("new@example.com"))

    assert (known.status_code, known.text) == (unknown.status_code, unknown.text)


def test_a_form_does_not_overwrite_a_known_persons_name(
        site: str, signup_ctx: AppContext) -> None:
    add_contact(signup_ctx, "ada@example.com", first_name="Ada", last_name="Lovelace")

    post_form(site + "/signup", good_form(first_name="Mallory", last_name="Evil"))

    with signup_ctx.sessions() as session:
        contact = session.scalars(select(Contact)).one()
    assert (contact.first_name, contact.last_name) == ("Ada", "Lovelace")


def test_a_second_sign_up_within_the_window_sends_no_second_mail(
        site: str, signup_ctx: AppContext) -> None:
    post_form(site + "/signup", good_form())
    post_form(site + "/signup", good_form())

    assert _count(signup_ctx, OutboxMail) == 1
    assert _count(signup_ctx, SignupToken) == 1
    assert [e.action for e in _events(signup_ctx)] == ["given", "given"]


def test_too_many_sign_ups_from_one_address_answer_429_with_retry_after(
        database_url: str, smtp: SmtpSink) -> None:
    ctx = AppContext.open(signup_settings(database_url, smtp,
                                          signup_rate_per_address_per_hour=2))
    ctx.sync_lists()
    with served(create_app(ctx, webhooks=False)) as url:
        answers = [post_form(url + "/signup", good_form()) for _ in range(3)]
    ctx.close()
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["Retry-After"]) > 0


def test_too_many_requests_from_one_ip_answer_429_before_reading_the_form(
        database_url: str, smtp: SmtpSink) -> None:
    ctx = AppContext.open(signup_settings(database_url, smtp, signup_rate_per_ip_per_hour=2))
    ctx.sync_lists()
    with served(create_app(ctx, webhooks=False)) as url:
        answers = [post_form(url + "/signup", good_form(f"p{n}@example.com"))
                   for n in range(3)]
        with ctx.sessions() as session:
            stored = session.scalar(select(func.count()).select_from(Contact))
    ctx.close()
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "Retry-After" in answers[2].headers
    assert stored == 2


def test_a_body_over_the_limit_is_refused_with_413(site: str, signup_ctx: AppContext) -> None:
    answer = post_form(site + "/signup", good_form(first_name="x" * 20000))

    assert answer.status_code == 413
    assert _count(signup_ctx, Contact) == 0


def test_a_multipart_form_is_refused_with_415_naming_the_type(site: str) -> None:
    answer = requests.post(site + "/signup", files={"email": (None, "ada@example.com")},
                           timeout=10)

    assert answer.status_code == 415
    assert "application/x-www-form-urlencoded" in answer.text


def test_the_built_in_form_ticks_no_box_and_labels_every_field(site: str) -> None:
    page = requests.get(site + "/signup", headers={"Accept-Language": "en"}, timeout=10)

    assert page.status_code == 200
    assert " checked" not in page.text
    for field in ("email", "first_name", "last_name", "purpose-newsletter"):
        assert f'<label for="{field}">' in page.text
    assert 'lang="en"' in page.text
    assert "Sign up" in page.text


def test_a_new_address_gets_the_rows_the_store_writes(site: str,
                                                      signup_ctx: AppContext) -> None:
    from syncd.schema import AuditEntry

    post_form(site + "/signup", good_form(purposes=["newsletter", "events"]))

    with signup_ctx.sessions() as session:
        contact = session.scalars(select(Contact)).one()
        actions = sorted(session.scalars(select(AuditEntry.action)))
    # created at revision 1, one bump per appended event, as store + ledger.append do
    assert contact.revision == 3
    assert actions == ["consent_given", "consent_given", "contact_created"]


def test_a_known_address_is_bumped_so_the_next_sync_looks_at_it(
        site: str, signup_ctx: AppContext) -> None:
    add_contact(signup_ctx, "ada@example.com")
    with signup_ctx.sessions() as session:
        before = session.scalars(select(Contact.revision)).one()

    post_form(site + "/signup", good_form())

    with signup_ctx.sessions() as session:
        assert session.scalars(select(Contact.revision)).one() == before + 1


def test_erasing_a_person_takes_their_queued_mail_and_tokens_with_them(
        site: str, signup_ctx: AppContext) -> None:
    from syncd.crm.erasure import erase_contact

    post_form(site + "/signup", good_form())

    erase_contact(signup_ctx, "ada@example.com", actor="test")

    assert (_count(signup_ctx, OutboxMail), _count(signup_ctx, SignupToken)) == (0, 0)


def test_no_log_line_holds_the_address_or_the_token(site: str, signup_ctx: AppContext,
                                                    smtp: SmtpSink) -> None:
    from structlog.testing import capture_logs

    from tests.signup.conftest import local, signed_up
    from tests.smtp_sink import link_in

    with capture_logs() as logs:
        mail = signed_up(site, signup_ctx, smtp, "secret.person@example.com")
        link = link_in(mail, "confirm")
        requests.post(local(link, site), timeout=10)
        smtp.stop()
        post_form(site + "/signup", good_form("other.person@example.com"))
        from tests.signup.conftest import deliver

        deliver(signup_ctx)
    text = repr(logs)
    assert logs
    assert "secret.person" not in text
    assert "other.person" not in text
    assert link.rsplit("/", 1)[1] not in text


def test_the_built_in_form_offers_no_purpose_of_a_non_marketing_list(site: str) -> None:
    page = requests.get(site + "/signup", timeout=10)

    assert 'value="newsletter"' in page.text
    assert 'value="offers"' in page.text
    assert 'value="ebook"' not in page.text  # an e-book delivery is not a subscription
