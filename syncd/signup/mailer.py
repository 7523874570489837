"""The mails syncd sends (confirmation, withdrawal notice, preference link) and the SMTP
client that sends them.

Each mail is plain text plus HTML, in the person's language, from templates an operator
can replace (syncd/service/templates/mail/). The confirmation names the purposes and
carries the single-use link PUBLIC_BASE_URL/confirm/{token}; every mail carries the
personal preference link PUBLIC_BASE_URL/preferences/{token} (rule 5: withdrawal as easy
as giving)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import TYPE_CHECKING

from syncd.config import Settings
from syncd.schema import Contact
from syncd.signup import tokens
from syncd.signup.pages import Pages, purpose_label

if TYPE_CHECKING:
    from datetime import datetime

    from syncd.context import AppContext
    from syncd.store.signups import Mail


class Permanent(Exception):
    """The mail server refused for good (5xx): retrying cannot help."""


def links(ctx: AppContext, mail: Mail, contact: Contact, now: datetime) -> dict[str, str]:
    base = ctx.settings.public_base_url or ""
    found = {"preferences_url": f"{base}/preferences/" + tokens.preference_token(
        ctx.keyring, contact.id, contact.email_key, now)}
    if mail.token_nonce is not None:
        raw = tokens.confirmation_token(ctx.keyring, mail.token_nonce)
        found["confirm_url"] = f"{base}/confirm/{raw}"
    return found


def _domain(settings: Settings) -> str:
    sender = settings.mail_from or "syncd@localhost"
    return sender.rpartition("@")[2].strip(">").strip() or "localhost"


def compose_for(ctx: AppContext, mail: Mail, contact: Contact, *,
                now: datetime) -> EmailMessage:
    settings = ctx.settings
    lang = mail.language if mail.language in ("nl", "en") else settings.pages_default_language
    values = {
        "first_name": contact.first_name,
        "purposes": [purpose_label(settings, p, lang) for p in mail.purposes],
        "expiry_days": settings.signup_token_expiry_days,
        **links(ctx, mail, contact, now),
    }
    pages = Pages.for_settings(settings)
    subject = pages.render(f"mail/{mail.kind}.subject.txt", lang, **values).strip()
    message = EmailMessage()
    message["From"] = settings.mail_from or "syncd@localhost"
    message["To"] = formataddr((contact.first_name or "", contact.email_display))
    message["Subject"] = " ".join(subject.split())
    message["Date"] = formatdate(now.timestamp(), usegmt=True)
    # Stable per outbox row: a re-send after a crash carries the same id.
    stamp = f"{mail.created_at:%Y%m%d%H%M%S}"
    message["Message-ID"] = f"<syncd-outbox-{mail.id}.{stamp}@{_domain(settings)}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    message["Content-Language"] = lang
    message.set_content(pages.render(f"mail/{mail.kind}.txt", lang, **values))
    message.add_alternative(pages.render(f"mail/{mail.kind}.html", lang, **values),
                            subtype="html")
    return message


class SmtpSender:
    """Sends through one SMTP session per batch (the outbox job calls `close` after its
    batch); a failed mail drops the session, the next one opens a fresh one. STARTTLS
    (certificate verified) unless switched off; port 465 is implicit TLS. The TLS context
    is built once: loading the CA bundle costs far more than sending a mail."""

    def __init__(self, settings: Settings) -> None:
        if settings.smtp_host is None:
            raise ValueError("smtp_host is not set")
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.timeout = settings.smtp_timeout_seconds
        self.starttls = settings.smtp_starttls
        self.username = settings.smtp_username
        self.password = (settings.smtp_password.get_secret_value()
                         if settings.smtp_password is not None else None)
        self._tls: ssl.SSLContext | None = None
        self._smtp: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def _connect(self) -> smtplib.SMTP:
        smtp: smtplib.SMTP
        if self.port == 465:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                    context=self._context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls and self.port != 465:
                smtp.starttls(context=self._context())
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def __call__(self, message: EmailMessage) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            self._smtp.rset()  # the session stays usable for the next mail
            codes = {code for code, _ in exc.recipients.values()}
            if all(code >= 500 for code in codes):
                raise Permanent(f"recipient refused {min(codes)}") from None
            raise
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            self.close()
            if exc.smtp_code >= 500:
                raise Permanent(f"{type(exc).__name__} {exc.smtp_code}") from None
            raise
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
