"""The durable mail outbox: a mail is a row written in the transaction that decided it,
sent later by the service's outbox job. The HTTP answer never waits for SMTP.

Delivery, per row: claim it (a conditional UPDATE: one replica wins), commit, send,
record the outcome. A failed send is retried with capped exponential backoff and
jitter; a permanent refusal (SMTP 5xx) or the last attempt parks it as `failed`. A
row left `sending` by a crash is claimed again after `CLAIM_LEASE`: the only window in
which a mail can go out twice is a crash between the server's 250 and our commit, and
the Message-ID is stable per row so the receiving side can tell. Every attempt is
counted in `syncd_outbox_attempts_total`."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy.orm import Session

from syncd import metrics
from syncd.clock import utcnow
from syncd.config import Settings
from syncd.context import AppContext
from syncd.db import transaction
from syncd.logs import get_logger
from syncd.schema import Contact, MailKind, MailStatus
from syncd.signup.mailer import Permanent, compose_for
from syncd.store import contacts, signups
from syncd.store.signups import Mail, NewMail, Token

log = get_logger("syncd.outbox")

CONFIRMATION, WITHDRAWAL, PREFERENCES_LINK = (
    MailKind.CONFIRMATION, MailKind.WITHDRAWAL, MailKind.PREFERENCES_LINK)
QUEUED, SENDING, SENT, FAILED = (
    MailStatus.QUEUED, MailStatus.SENDING, MailStatus.SENT, MailStatus.FAILED)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
# Longer than any one send can take (three SMTP timeouts): a claim older than this was
# left by a process that died.
CLAIM_LEASE = timedelta(minutes=10)
BATCH = 50
# Sent and failed mails, spent and expired links: kept this long after they settled (an
# operator can still see what went out), never less than the mail window.
SETTLED_KEEP = timedelta(days=30)


def enqueue(session: Session, mails: Sequence[NewMail]) -> None:
    """Queue mails in the caller's transaction (sent later by the outbox job)."""
    signups.enqueue(session, mails)


def recently_mailed(session: Session, address_hmac: str, since: datetime) -> set[str]:
    """Purposes a confirmation mail was queued for since `since` (sent or not)."""
    return {purpose for purposes in signups.purposes_queued_since(
        session, address_hmac, CONFIRMATION, since) for purpose in purposes}


def recently_queued(session: Session, address_hmac: str, kind: MailKind,
                    since: datetime) -> bool:
    return bool(signups.purposes_queued_since(session, address_hmac, kind, since))


def backoff(attempts: int) -> timedelta:
    """After the n-th failed attempt: base * 2^(n-1), capped, with +-20 % jitter so that
    a recovering mail server is not hit by every queued mail at the same second."""
    delay = min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)
    jittered: timedelta = delay * random.uniform(0.8, 1.2)  # noqa: S311 - not a secret
    return jittered


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    queued: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def idle(self) -> bool:
        return not (self.sent or self.retried or self.failed)


@dataclass
class _Claimed:
    mail: Mail  # composed and sent outside the transaction
    contact: Contact | None  # detached
    token: Token | None


def _claim_batch(ctx: AppContext, now: datetime, limit: int) -> list[_Claimed]:
    """One short transaction: claim the due rows (a row another replica claimed first is
    skipped) and read what their mails need."""
    stale = now - CLAIM_LEASE
    with transaction(ctx.sessions) as session:
        mails = signups.claim(session, signups.due(session, now, stale, limit), now, stale)
        links = signups.tokens_by_id(session, [m.token_id for m in mails if m.token_id])
        return [_Claimed(mail, contacts.by_id(session, mail.contact_id),
                         links.get(mail.token_id) if mail.token_id else None)
                for mail in mails]


def _message(ctx: AppContext, item: _Claimed, now: datetime) -> EmailMessage | str:
    """The message for the row, or why it cannot be sent any more."""
    mail, token = item.mail, item.token
    if item.contact is None:
        return "contact erased"
    if mail.kind == CONFIRMATION and (token is None or mail.token_nonce is None):
        return "token missing"
    if token is not None and token.expires_at <= now:
        return "link expired before the mail could be sent"
    return compose_for(ctx, mail, item.contact, now=now)


def _finish(ctx: AppContext, changes: Sequence[tuple[Mail, Mail]]) -> None:
    if not changes:
        return
    with transaction(ctx.sessions) as session:
        signups.settle(session, changes)


def deliver_due(ctx: AppContext, send: Callable[[EmailMessage], None], *,
                now: datetime | None = None, limit: int = BATCH,
                stop: Callable[[], bool] = lambda: False) -> DeliveryReport:
    """Send the due mails (at most `limit`) once each; returns what happened. After a
    failure that says the server is down or slow, the rest of the batch is handed back
    untried: one timeout per run, not one per mail."""
    report = DeliveryReport()
    claimed = _claim_batch(ctx, now or utcnow(), limit)
    try:
        for index, item in enumerate(claimed):
            if stop():
                _release(ctx, claimed[index:])
                break
            if not _attempt(ctx, send, item, now or utcnow(), report):
                _release(ctx, claimed[index + 1:])
                break
    finally:
        close = getattr(send, "close", None)
        if callable(close):
            close()  # end the batch's SMTP session
    with ctx.sessions() as session:
        report.queued = signups.unsent_count(session)
    metrics.OUTBOX_QUEUED.set(report.queued)
    return report


def _release(ctx: AppContext, items: list[_Claimed]) -> None:
    """Claimed but not tried: back to the queue as they were (no attempt counted)."""
    _finish(ctx, [(item.mail, replace(item.mail, status=QUEUED, claimed_at=None))
                  for item in items])


def _attempt(ctx: AppContext, send: Callable[[EmailMessage], None], item: _Claimed,
             moment: datetime, report: DeliveryReport) -> bool:
    """One send and its outcome; False when the server looks down or slow."""
    mail = item.mail
    kind, attempts = mail.kind, mail.attempts + 1
    message = _message(ctx, item, moment)
    error: str | None = None
    permanent = False
    if isinstance(message, str):
        error, permanent = message, True
    else:
        try:
            send(message)
        except Permanent as exc:
            error, permanent = str(exc), True
        except Exception as exc:  # any other failure is worth another try
            error = _describe(exc)
    if error is None:
        _finish(ctx, [(mail, replace(mail, status=SENT, sent_at=utcnow(), attempts=attempts,
                                     token_nonce=None, last_error=None))])
        report.sent += 1
        metrics.OUTBOX_ATTEMPTS.labels(kind, "sent").inc()
        return True
    report.errors[error[:60]] = report.errors.get(error[:60], 0) + 1
    if permanent or attempts >= ctx.settings.outbox_max_attempts:
        _finish(ctx, [(mail, replace(mail, status=FAILED, attempts=attempts,
                                     token_nonce=None, last_error=error[:500]))])
        report.failed += 1
        metrics.OUTBOX_ATTEMPTS.labels(kind, "failed").inc()
        log.error("mail not sent; given up", outbox_id=mail.id, kind=kind,
                  attempts=attempts, error=error)
        return permanent
    _finish(ctx, [(mail, replace(mail, status=QUEUED, attempts=attempts,
                                 last_error=error[:500],
                                 next_attempt_at=moment + backoff(attempts)))])
    report.retried += 1
    metrics.OUTBOX_ATTEMPTS.labels(kind, "retry").inc()
    log.warning("mail not sent; will retry", outbox_id=mail.id, kind=kind,
                attempts=attempts, error=error)
    return False


def prune(session: Session, settings: Settings, now: datetime, *,
          dry_run: bool = False) -> dict[str, int]:
    """Storage limitation for the sign-up tables (run by `syncd prune`): settled mails
    and spent or expired links after `SETTLED_KEEP` (the ledger keeps the token's hash as
    the proof). A link's queued mail goes with it (ON DELETE CASCADE) only once expired.
    `dry_run`: count what would go, delete nothing."""
    keep = max(SETTLED_KEEP, timedelta(hours=settings.signup_mail_window_hours))
    mails, links = signups.prune_settled(session, now - keep, dry_run=dry_run)
    return {"outbox_mails_deleted": mails, "signup_tokens_deleted": links}


def _describe(exc: Exception) -> str:
    """The class and SMTP code only: a server's message can repeat the address (I9)."""
    code = getattr(exc, "smtp_code", None)
    return f"{type(exc).__name__}" + (f" {code}" if code is not None else "")
