"""The consent ledger's links: what an event's SHA-256 covers and how it is computed.
Pure: the append (syncd.store.ledger), the purge's one-statement write
(syncd.store.withdrawal), the migration that chained the existing events and
`syncd ledger verify` (syncd.consent.chain_verify) all hash with this one function."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from syncd.clock import as_utc

# The link before the first event.
GENESIS = "0" * 64
# Versioned: a future change of the hashed fields starts "v2" and verify knows both.
HASH_VERSION = "syncd-ledger-v1"
# The content a link covers: every column except the row id (given by the database) and
# the chain columns themselves. Order matters: it is the order they are hashed in.
HASHED_FIELDS = (
    "contact_id", "purpose", "action", "occurred_at", "recorded_at", "source",
    "email_at_time", "form_url", "text_version", "privacy_notice_version", "ip",
    "user_agent", "confirmation_token_hash", "reason", "campaign_id", "dedupe_key",
)

# json.dumps with options builds a new encoder per call (a third of the link's cost); the
# output is the same byte for byte, so every stored link still verifies.
_HASH_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return _utc_text(value)
    return value


@functools.lru_cache(maxsize=4096)
def _utc_text(value: datetime) -> str:
    """Kept per instant (a bulk append repeats its times: the chunk's `recorded_at`, the
    file's event times): equal instants have one UTC text, whatever their zone."""
    return as_utc(value).isoformat()


# The hashed fields that hold timestamps: only these are turned into UTC text (any other
# value is hashed as the JSON it is; a timestamp elsewhere fails the encoding, never
# hashes differently from what verify recomputes).
_TIMES = tuple(HASHED_FIELDS.index(name) for name in ("occurred_at", "recorded_at"))


def event_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """The link of one event: SHA-256 over the version, the previous link and the content."""
    content = [row.get(name) for name in HASHED_FIELDS]  # absent is NULL
    for index in _TIMES:
        content[index] = _canonical(content[index])
    payload = _HASH_ENCODER.encode([HASH_VERSION, prev_hash, content])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
