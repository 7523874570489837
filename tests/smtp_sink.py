"""The real SMTP server of the tests (syncd.demo.mail_sink, aiosmtpd on loopback) and
helpers to read what it received."""

from __future__ import annotations

import re
from email.message import EmailMessage

from syncd.demo.mail_sink import MailSink as SmtpSink

__all__ = ["SmtpSink", "html_of", "link_in", "text_of"]

LINK = re.compile(r"https?://[^\s\"<>]+/(confirm|preferences)/[A-Za-z0-9_.\-]+")


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def link_in(message: EmailMessage, kind: str) -> str:
    for found in LINK.finditer(text_of(message)):
        if found.group(1) == kind:
            return found.group(0)
    raise AssertionError(f"no {kind} link in the mail")
