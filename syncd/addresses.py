"""Email addresses: one normal form for identity, syntax checked without DNS look-ups.

Most addresses are plain ASCII (`name@example.org`); for those a cheap check decides
with the same outcome as the full validator (email-validator), which costs about as much
as the rest of an import line. The cheap check only ever accepts: it takes an address
only when the full validator is known to accept it with the same normal form, and sends
every other address (non-ASCII, quoted, bracketed, Punycode, special-use domain, ...)
to the full validator, so every refusal and its message come from there.
tests/test_addresses.py checks with Hypothesis that both paths agree."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from syncd.errors import InputError

MAX_ADDRESS_LENGTH = 254
# What the full validator accepts unchanged but for case, in the ASCII subset checked
# here: a dot-atom local part (the characters of email-validator's DOT_ATOM_TEXT) and a
# host name of at least two labels (letters, digits, inner hyphens) whose last character
# is a letter (email-validator's top-level-domain rule).
_ATEXT = r"a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_TOP = r"(?:[a-zA-Z0-9][a-zA-Z0-9-]*)?[a-zA-Z]"
_PLAIN = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@((?:{_LABEL}\.)+{_TOP})")
# email-validator's limits for the part after the @-sign and each label in it.
_DOMAIN_MAX = 253
_LABEL_MAX = 63
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


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
    if plain_ascii(display):
        return Address(key=display.lower(), display=display)
    return _validated(display)


def plain_ascii(display: str) -> bool:
    """True for an address the full validator accepts with the normal form
    `display.lower()` (a trimmed address of at most MAX_ADDRESS_LENGTH characters):
    the cheap check. False says nothing: the full validator decides."""
    found = _PLAIN.fullmatch(display)
    return found is not None and _plain_domain(found.group(1).lower())


@functools.lru_cache(maxsize=1024)
def _plain_domain(domain: str) -> bool:
    """The domain's part of `plain_ascii`, kept per domain (an import's addresses share a
    few domains)."""
    if len(domain) > _DOMAIN_MAX or "--" in domain:  # "--": Punycode and its look-alikes
        return False
    labels = domain.split(".")
    if any(len(label) > _LABEL_MAX for label in labels):
        return False
    # A special-use name is the domain or one of its parents: a look-up per parent (a
    # scan of every name per address cost a tenth of parsing one).
    return not any(".".join(labels[i:]) in _SPECIAL_USE for i in range(len(labels)))


def _validated(display: str) -> Address:
    """The full validator (email-validator, no DNS)."""
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
