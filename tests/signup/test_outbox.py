"""The outbox against a real SMTP server (aiosmtpd on loopback): down, slow, refusing,
temporarily failing, a restart in between, two senders at once. Nothing lost, nothing
sent twice, every attempt counted; the mail itself (languages, parts, purposes, links),
and only the token's hash kept once it is sent."""

from __future__ import annotations

import threading
from datetime import timedelta

from prometheus_client import REGISTRY
from sqlalchemy import select, text

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import OutboxMail, SignupToken
from syncd.service.scheduler import job_specs
from syncd.service.smtp_sender import SmtpSender
from syncd.signup import outbox
from syncd.signup.outbox import deliver_due
from tests.signup.conftest import deliver, good_form, local, post_form, signed_up
from tests.smtp_sink import SmtpSink, html_of, link_in, text_of


def _mails(ctx: AppContext) -> list[OutboxMail]:
    with ctx.sessions() as session:
        return list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def _attempts(kind: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("syncd_outbox_attempts_total",
                                     {"kind": kind, "outcome": outcome}) or 0.0


def test_smtp_down_keeps_the_mail_queued_for_a_later_attempt(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    post_form(site + "/signup", good_form())
    smtp.stop()
    retries = _attempts("confirmation", "retry")

    report = deliver(signup_ctx)

    [mail] = _mails(signup_ctx)
    assert (report.retried, mail.status, mail.attempts) == (1, "queued", 1)
    assert mail.next_attempt_at > utcnow() + timedelta(seconds=20)  # backoff, not a spin
    assert mail.last_error is not None
    assert "@" not in mail.last_error
    assert _attempts("confirmation", "retry") == retries + 1


def test_a_mail_is_not_retried_before_its_backoff_is_over(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    post_form(site + "/signup", good_form())
    smtp.stop()
    deliver(signup_ctx)
    smtp.start()

    assert deliver(signup_ctx).sent == 0
    assert deliver(signup_ctx, now=utcnow() + timedelta(minutes=2)).sent == 1


def test_across_a_restart_nothing_is_lost_and_nothing_is_sent_twice(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    for n in range(3):
        post_form(site + "/signup", good_form(f"p{n}@example.com"))
    smtp.stop()
    deliver(signup_ctx)
    smtp.start()
    restarted = AppContext.open(signup_ctx.settings)  # a new process on the same database
    later = utcnow() + timedelta(hours=2)

    first = deliver(restarted, now=later)
    second = deliver(restarted, now=later + timedelta(hours=2))
    restarted.close()

    assert (first.sent, second.sent) == (3, 0)
    assert sorted(m["To"] for m in smtp.messages) == [
        "p0@example.com", "p1@example.com", "p2@example.com"]


def test_a_slow_server_is_given_up_on_within_the_timeout_and_tried_again(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    post_form(site + "/signup", good_form())
    smtp.set(delay=3.0)
    impatient = signup_ctx.settings.model_copy(update={"smtp_timeout_seconds": 1.0})

    slow = deliver_due(signup_ctx, SmtpSender(impatient))
    smtp.set(delay=0)
    fast = deliver(signup_ctx, now=utcnow() + timedelta(minutes=2))

    assert (slow.retried, fast.sent) == (1, 1)
    assert len(smtp.wait_for(1)) == 1


def test_a_permanent_refusal_parks_the_mail_as_failed_without_retrying(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    post_form(site + "/signup", good_form())
    smtp.set("refuse")

    report = deliver(signup_ctx)
    again = deliver(signup_ctx, now=utcnow() + timedelta(days=1))

    [mail] = _mails(signup_ctx)
    assert (report.failed, again.failed, mail.status) == (1, 0, "failed")
    assert mail.token_nonce is None  # nothing left that could rebuild the link


def test_a_temporary_refusal_is_retried(site: str, signup_ctx: AppContext,
                                        smtp: SmtpSink) -> None:
    post_form(site + "/signup", good_form())
    smtp.set("tempfail")
    first = deliver(signup_ctx)
    smtp.set()

    second = deliver(signup_ctx, now=utcnow() + timedelta(minutes=2))

    assert (first.retried, second.sent) == (1, 1)


def test_the_last_allowed_attempt_parks_the_mail(site: str, signup_ctx: AppContext,
                                                 smtp: SmtpSink) -> None:
    post_form(site + "/signup", good_form())
    smtp.stop()
    moment = utcnow()
    for _ in range(signup_ctx.settings.outbox_max_attempts):
        moment += timedelta(hours=2)
        deliver(signup_ctx, now=moment)

    [mail] = _mails(signup_ctx)
    assert (mail.status, mail.attempts) == ("failed", signup_ctx.settings.outbox_max_attempts)


def test_two_senders_at_once_send_each_mail_once(site: str, signup_ctx: AppContext,
                                                 smtp: SmtpSink) -> None:
    for n in range(6):
        post_form(site + "/signup", good_form(f"p{n}@example.com"))
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(deliver(signup_ctx)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sum(r.sent for r in reports) == 6
    assert len(smtp.wait_for(6)) == 6
    assert len({m["To"] for m in smtp.messages}) == 6


def test_a_mail_left_sending_by_a_crash_is_sent_after_the_lease(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    post_form(site + "/signup", good_form())
    with transaction(signup_ctx.sessions) as session:  # claimed, then the process died
        session.execute(text("UPDATE outbox SET status = 'sending', claimed_at = :at"),
                        {"at": utcnow()})

    assert deliver(signup_ctx).sent == 0
    assert deliver(signup_ctx, now=utcnow() + outbox.CLAIM_LEASE * 2).sent == 1


def test_a_link_that_expired_while_the_server_was_down_is_not_mailed(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    post_form(site + "/signup", good_form())

    report = deliver(signup_ctx, now=utcnow() + timedelta(days=8))

    assert (report.failed, smtp.messages) == (1, [])


def test_the_confirmation_mail_is_dutch_by_default_text_and_html_naming_the_purposes(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    mail = signed_up(site, signup_ctx, smtp, purposes=["newsletter", "events"])

    assert mail["Subject"] == "Bevestig uw aanmelding"
    assert "Nieuwsbrief" in text_of(mail)
    assert "Uitnodigingen voor evenementen" in text_of(mail)
    assert link_in(mail, "confirm") in html_of(mail)
    assert "/preferences/" in text_of(mail)
    assert "/preferences/" in html_of(mail)
    assert mail["Auto-Submitted"] == "auto-generated"


def test_the_confirmation_mail_is_english_for_an_english_form(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    mail = signed_up(site, signup_ctx, smtp, language="en")

    assert mail["Subject"] == "Please confirm your sign-up"
    assert "Newsletter" in text_of(mail)
    assert "expires after 7 days" in text_of(mail)


def test_once_sent_the_database_holds_only_the_tokens_hash(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    token = link_in(signed_up(site, signup_ctx, smtp), "confirm").rsplit("/", 1)[1]

    with signup_ctx.sessions() as session:
        rows = [str(tuple(r)) for table in (OutboxMail, SignupToken)
                for r in session.execute(select(table.__table__))]
    assert rows
    assert not any(token in row for row in rows)
    assert _mails(signup_ctx)[0].token_nonce is None


def test_the_mail_link_points_at_the_public_base_url(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    link = link_in(signed_up(site, signup_ctx, smtp), "confirm")

    assert link.startswith("https://news.example.org/confirm/")
    assert local(link, site).startswith(site)


def test_the_service_runs_the_outbox_job_when_a_mail_server_is_set(
        signup_ctx: AppContext) -> None:
    class Jobs:
        def sync(self) -> None: ...
        def reconcile(self) -> None: ...
        def inbox_retry(self) -> None: ...
        def prune(self) -> None: ...
        def outbox(self) -> None: ...

    specs = {spec.job_id: spec for spec in job_specs(Jobs(), signup_ctx.settings)}

    assert specs["outbox"].interval == timedelta(seconds=10)


def test_a_down_server_costs_one_attempt_per_run_and_the_rest_wait_untried(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    for n in range(3):
        post_form(site + "/signup", good_form(f"p{n}@example.com"))
    smtp.stop()

    report = deliver(signup_ctx)

    assert report.retried == 1
    assert sorted((m.status, m.attempts) for m in _mails(signup_ctx)) == [
        ("queued", 0), ("queued", 0), ("queued", 1)]


def test_prune_deletes_settled_mails_and_spent_links_after_thirty_days_only(
        site: str, signup_ctx: AppContext, smtp: SmtpSink) -> None:
    import requests

    from syncd.retention import prune

    link = local(link_in(signed_up(site, signup_ctx, smtp), "confirm"), site)
    requests.post(link, timeout=10)
    post_form(site + "/signup", good_form("waiting@example.com"))  # queued, not sent

    soon = prune(signup_ctx, now=utcnow() + timedelta(days=29))
    later = prune(signup_ctx, now=utcnow() + timedelta(days=31))

    assert (soon["outbox_mails_deleted"], soon["signup_tokens_deleted"]) == (0, 0)
    # the sent mail and the spent link; the waiting sign-up, never confirmed, is gone
    # with its link and queued mail by the lifecycle rule (retention_unconfirmed_days=30)
    assert (later["outbox_mails_deleted"], later["signup_tokens_deleted"],
            later["unconfirmed_signups_deleted"]) == (1, 1, 1)
    assert _mails(signup_ctx) == []
