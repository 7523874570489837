"""Email addresses: one normal form for identity, syntax checked without DNS look-ups."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from syncd.errors import InputError

MAX_ADDRESS_LENGTH = 254


@dataclass(frozen=True)
class Address:
    key: str  # trimmed, lower-cased: identity here and at Mailchimp
    display: str  # as the person wrote it, trimmed

    @property
    def subscriber_hash(self) -> str:
        return subscriber_hash(self.key)


def parse_address(raw: str) -> Address:
    """Trim, syntax-check (no DNS) and lower-case. The error never repeats the input,
    so it is safe to log."""
    display = raw.strip() if isinstance(raw, str) else ""
    if not display:
        raise InputError("email address is empty")
    if len(display) > MAX_ADDRESS_LENGTH:
        raise InputError(f"email address is longer than {MAX_ADDRESS_LENGTH} characters")
    try:
        checked = validate_email(display, check_deliverability=False)
    except EmailNotValidError as exc:
        detail = _strip_address(str(exc), display)
        raise InputError(f"email address is not valid: {detail}") from None
    return Address(key=checked.normalized.lower(), display=display)


def subscriber_hash(email_key: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased address (not a security use)."""
    return hashlib.md5(email_key.lower().encode("utf-8"), usedforsecurity=False).hexdigest()


def _strip_address(message: str, address: str) -> str:
    return message.replace(address, "<address>")
