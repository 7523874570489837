"""The preference page: a signed personal link shows the person's purposes and state;
unticking withdraws (channel preference_page) with the same purge as an unsubscribe
webhook, in one transaction, mails a short confirmation and reaches Mailchimp in the
next sync; ticking starts that purpose's double opt-in; a link can be re-requested by
address with the same answer whether the address is known."""

from __future__ import annotations

import requests
from sqlalchemy import func, select

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.crm import store
from syncd.schema import ConsentEvent, OutboxMail, Suppression
from syncd.service.app import create_app
from syncd.sync.run import run_sync
from tests.builders import add_contact, confirmed
from tests.conftest import emulated_settings
from tests.service.conftest import served
from tests.signup.conftest import deliver, local, post_form, signed_up, signup_settings
from tests.smtp_sink import SmtpSink, link_in, text_of


def _confirmed_person(site: str, ctx: AppContext, smtp: SmtpSink) -> str:
    """Sign up and confirm through the real pages; returns the local preference link."""
    mail = signed_up(site, ctx, smtp)
    answer = requests.post(local(link_in(mail, "confirm"), site), timeout=10)
    assert answer.status_code == 200
    return local(link_in(mail, "preferences"), site)


def _withdrawals(ctx: AppContext) -> list[ConsentEvent]:
    with ctx.sessions() as session:
        return list(session.scalars(select(ConsentEvent).where(
            ConsentEvent.action == "withdrawn")))


def test_the_page_shows_each_purpose_and_its_state(site: str, signup_ctx: AppContext,
                                                   smtp: SmtpSink) -> None:
    link = _confirmed_person(site, signup_ctx, smtp)

    page = requests.get(link, headers={"Accept-Language": "en-GB,en;q=0.9"}, timeout=10)

    assert page.status_code == 200
    assert 'value="newsletter" checked' in page.text
    assert "(subscribed)" in page.text
    assert 'value="offers" aria-describedby' in page.text  # not ticked
    assert "(not subscribed)" in page.text


def test_unticking_records_withdrawn_purges_the_lists_and_suppresses_at_once(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    link = _confirmed_person(site, signup_ctx, smtp)

    answer = post_form(link, {"purposes": []})

    assert answer.status_code == 200
    [withdrawal] = _withdrawals(signup_ctx)
    assert (withdrawal.purpose, withdrawal.source, withdrawal.ip) == (
        "newsletter", "preference_page", "127.0.0.1")
    with signup_ctx.sessions() as session:
        contact = store.find_contact(session, "ada@example.com")
        assert contact is not None
        assert store.list_names(session, contact.id) == []
        assert session.scalars(select(Suppression.purpose)).all() == ["newsletter"]


def test_unticking_mails_a_short_confirmation_of_the_unsubscription(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    link = _confirmed_person(site, signup_ctx, smtp)
    post_form(link, {"purposes": [], "language": "en"})

    deliver(signup_ctx)

    mail = smtp.wait_for(2)[-1]
    assert mail["Subject"] == "You are unsubscribed"
    assert "Newsletter" in text_of(mail)


def test_saving_with_nothing_changed_records_nothing(site: str, signup_ctx: AppContext,
                                                     smtp: SmtpSink) -> None:
    link = _confirmed_person(site, signup_ctx, smtp)

    post_form(link, {"purposes": ["newsletter"]})

    assert _withdrawals(signup_ctx) == []
    with signup_ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMail)) == 1


def test_ticking_a_purpose_starts_its_double_opt_in(site: str, signup_ctx: AppContext,
                                                    smtp: SmtpSink) -> None:
    link = _confirmed_person(site, signup_ctx, smtp)

    post_form(link, {"purposes": ["newsletter", "offers"]})

    with signup_ctx.sessions() as session:
        given = session.scalars(select(ConsentEvent).where(
            ConsentEvent.purpose == "offers")).one()
        mail = session.scalars(select(OutboxMail).order_by(OutboxMail.id.desc())).first()
    assert (given.action, given.source) == ("given", "preference_page")
    assert mail is not None
    assert (mail.kind, mail.purposes) == ("confirmation", ["offers"])


def test_a_forged_or_altered_link_shows_a_clear_page_and_changes_nothing(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    link = _confirmed_person(site, signup_ctx, smtp)
    contact_id, issued, mac = link.rsplit("/", 1)[1].split(".")
    other = f"{site}/preferences/{int(contact_id) + 1}.{issued}.{mac}"
    bent = f"{site}/preferences/{contact_id}.{issued}.{'0' * 32}"

    answers = [post_form(url, {"purposes": []}) for url in (other, bent)]
    answers.append(requests.get(f"{site}/preferences/nonsense", timeout=10))

    assert [a.status_code for a in answers] == [404, 404, 404]
    assert _withdrawals(signup_ctx) == []


def test_an_unknown_purpose_on_the_page_is_refused_naming_the_field(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    link = _confirmed_person(site, signup_ctx, smtp)

    answer = post_form(link, {"purposes": ["lottery"]})

    assert answer.status_code == 422
    assert "<strong>purposes</strong>" in answer.text
    assert _withdrawals(signup_ctx) == []


def test_a_link_can_be_requested_with_the_same_answer_whether_the_address_is_known(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    add_contact(signup_ctx, "known@example.com", events=confirmed())

    known = post_form(site + "/preferences", {"email": "known@example.com"})
    unknown = post_form(site + "/preferences", {"email": "stranger@example.com"})
    deliver(signup_ctx)

    assert (known.status_code, known.text) == (unknown.status_code, unknown.text)
    [mail] = smtp.wait_for(1)
    assert mail["To"] == "known@example.com"
    assert "/preferences/" in text_of(mail)


def test_requesting_the_link_again_within_the_window_sends_one_mail(
        site: str, signup_ctx: AppContext) -> None:
    add_contact(signup_ctx, "known@example.com", events=confirmed())

    for _ in range(2):
        post_form(site + "/preferences", {"email": "known@example.com"})

    with signup_ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMail)) == 1


def test_link_requests_are_rate_limited_per_address(database_url: str, smtp: SmtpSink) -> None:
    ctx = AppContext.open(signup_settings(database_url, smtp,
                                          signup_rate_per_address_per_hour=1))
    ctx.sync_lists()
    with served(create_app(ctx, webhooks=False)) as url:
        answers = [post_form(url + "/preferences", {"email": "x@example.com"})
                   for _ in range(2)]
    ctx.close()
    assert [a.status_code for a in answers] == [200, 429]
    assert "Retry-After" in answers[1].headers


def test_the_withdrawal_reaches_mailchimp_in_the_next_sync(
        database_url: str, smtp: SmtpSink, emulator: MailchimpEmulator) -> None:
    mail_settings = signup_settings(database_url, smtp).model_dump(include={
        "smtp_host", "smtp_port", "smtp_starttls", "mail_from", "public_base_url"})
    # One member of one: any unsubscribe is above the safety share, so lift it here.
    ctx = AppContext.open(emulated_settings(database_url, emulator, **mail_settings,
                                            sync_max_unsubscribe_share=1.0))
    ctx.sync_lists()
    with served(create_app(ctx, webhooks=False)) as site:
        link = _confirmed_person(site, ctx, smtp)
        run_sync(ctx)
        assert emulator.member("ada@example.com")["status"] == "subscribed"  # type: ignore[index]
        post_form(link, {"purposes": []})
    run_sync(ctx)
    ctx.close()

    assert emulator.member("ada@example.com")["status"] == "unsubscribed"  # type: ignore[index]
