"""The mails syncd sends (confirmation, withdrawal notice, preference link), composed;
the SMTP client that sends them is network code and lives in syncd.service.smtp_sender.

Each mail is plain text plus HTML, in the person's language, from templates an operator
can replace (syncd/service/templates/mail/). The confirmation names the purposes and
carries the single-use link PUBLIC_BASE_URL/confirm/{token}; every mail carries the
personal preference link PUBLIC_BASE_URL/preferences/{token} (rule 5: withdrawal as easy
as giving)."""

from __future__ import annotations

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
