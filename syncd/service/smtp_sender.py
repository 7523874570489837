"""The SMTP client that sends syncd's mails (network code, so it lives in the service):
one session per outbox batch, TLS verified, a refusal for good raised as `Permanent`."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from syncd.config import Settings
from syncd.signup.mailer import Permanent


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
