"""Checking a presented secret (the webhook URL's secret, a sign-up API bearer token)
against the configured ones, in constant time and against EVERY one of them (rotation:
old and new both work while a client is being switched over)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from pydantic import SecretStr


def secret_digest(value: str) -> bytes:
    # Digests have one length: compare_digest then leaks nothing about the secret's length.
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def digests_of(configured: Iterable[SecretStr]) -> tuple[bytes, ...]:
    """The digests to compare with, made once per app."""
    return tuple(secret_digest(s.get_secret_value()) for s in configured)


def secret_matches(given: str, digests: tuple[bytes, ...]) -> bool:
    """Constant time against EVERY configured secret: no early exit on a match."""
    candidate = secret_digest(given)
    matched = False
    for digest in digests:
        matched |= hmac.compare_digest(candidate, digest)
    return matched
