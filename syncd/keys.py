"""Keyed hashes of addresses: suppression entries and log pseudonyms.

A keyed hash is still personal data under the GDPR (Dutch AP on pseudonymisation); it is
kept only to keep suppressed people suppressed and to correlate log lines."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Keyring:
    key: bytes

    def address_hmac(self, email_key: str) -> str:
        """HMAC-SHA256 of the normalised address, for suppression entries (rule 8)."""
        return self._mac(b"suppression:", email_key.strip().lower())

    def address_hmacs(self, email_keys: Iterable[str]) -> list[str]:
        """`address_hmac` of many addresses (the sync's chunks): the keyed state is
        prepared once and copied, the same digests at about half the cost."""
        keyed = hmac.new(self.key, b"suppression:", hashlib.sha256)
        found = []
        for email_key in email_keys:
            mac = keyed.copy()
            mac.update(email_key.strip().lower().encode("utf-8"))
            found.append(mac.hexdigest())
        return found

    def pseudonym(self, email_key: str) -> str:
        """A short stable stand-in for an address in logs; a separate derivation so a
        log line cannot be joined to the suppression table."""
        return "p_" + self._mac(b"log:", email_key.strip().lower())[:16]

    def _mac(self, context: bytes, value: str) -> str:
        return hmac.new(self.key, context + value.encode("utf-8"), hashlib.sha256).hexdigest()
