"""Confirmation tokens and preference-page links.

A confirmation token is derived with the installation's key from a random nonce: the
database keeps the token's SHA-256 for good and the nonce only until the mail is sent,
so a copy of the database made after sending holds no usable link. A preference link
is signed (HMAC) over the contact, the moment it was made and the address it was made
for: it needs no table, and an address change or an erasure voids it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from syncd.keys import Keyring

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
LINK_PATTERN = re.compile(r"^(\d{1,12})\.(\d{1,12})\.([0-9a-f]{32})$")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class NewToken:
    nonce: str  # kept in the outbox until the mail is sent
    token: str  # the raw token: only in the mail
    token_hash: str  # kept in signup_tokens


def confirmation_token(keyring: Keyring, nonce: str) -> str:
    digest = hmac.new(keyring.key, b"confirm-token:" + nonce.encode("ascii"),
                      hashlib.sha256).digest()
    return _b64(digest)  # 43 characters


def new_confirmation_token(keyring: Keyring) -> NewToken:
    nonce = secrets.token_hex(16)
    token = confirmation_token(keyring, nonce)
    return NewToken(nonce, token, token_hash(token))


def token_hash(token: str) -> str:
    """What the ledger and signup_tokens keep: the SHA-256 of the raw token."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def looks_like_token(token: str) -> bool:
    """A forged token of the wrong shape is refused without a database look-up."""
    return bool(TOKEN_PATTERN.match(token))


def _link_mac(keyring: Keyring, contact_id: int, issued: int, email_key: str) -> str:
    message = f"preferences:{contact_id}:{issued}:{email_key}".encode()
    return hmac.new(keyring.key, message, hashlib.sha256).hexdigest()[:32]


def preference_token(keyring: Keyring, contact_id: int, email_key: str,
                     now: datetime) -> str:
    issued = int(now.timestamp())
    return f"{contact_id}.{issued}.{_link_mac(keyring, contact_id, issued, email_key)}"


@dataclass(frozen=True)
class LinkClaim:
    contact_id: int
    issued: int
    mac: str


def parse_preference_token(token: str) -> LinkClaim | None:
    found = LINK_PATTERN.match(token)
    if found is None:
        return None
    return LinkClaim(int(found.group(1)), int(found.group(2)), found.group(3))


def preference_link_valid(keyring: Keyring, claim: LinkClaim, email_key: str, *,
                          now: datetime, max_age: timedelta) -> bool:
    expected = _link_mac(keyring, claim.contact_id, claim.issued, email_key)
    if not hmac.compare_digest(expected, claim.mac):
        return False
    age = now.timestamp() - claim.issued
    return -300 <= age <= max_age.total_seconds()  # a little clock skew between replicas
