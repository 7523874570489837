"""A consent event's dedupe key is the SHA-256 of json.dumps(content, sort_keys=True), as
every stored key was made: the joined fast form gives the same key for any content."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action


def _as_stored(record: ConsentRecord, email_key: str, salt: str = "") -> str:
    """The key as it was first defined (asdict, json.dumps with sort_keys)."""
    content = asdict(record) | {"occurred_at": record.occurred_at.isoformat(),
                                "email": email_key, "salt": salt}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


AT = datetime(2026, 3, 1, 9, tzinfo=UTC)
RECORDS = [
    ConsentRecord("newsletter", Action.GIVEN, AT, "import"),
    # every field its own value: a field out of place changes the key
    ConsentRecord("purpose", Action.CONFIRMED, AT, "source", "form_url", "text_version",
                  "privacy_notice_version", "ip", "user_agent", "confirmation_token_hash",
                  "reason", "campaign_id"),
    ConsentRecord("newsletter", Action.WITHDRAWN, AT.replace(microsecond=123),
                  'quote " backslash \\ tab \t newline \n', reason="Zoë ünïcode ✓ 😀",
                  user_agent="\x00\x1f control"),
    ConsentRecord("events", Action.SOFT_OPT_IN,
                  datetime(2026, 3, 1, 9, tzinfo=timezone(timedelta(hours=2))), "web"),
]


@pytest.mark.parametrize("record", RECORDS, ids=["bare", "every field", "escapes", "offset"])
@pytest.mark.parametrize("salt", ["", "s@lt \"x\""])
def test_the_dedupe_key_is_the_sorted_json_of_the_content(record: ConsentRecord,
                                                          salt: str) -> None:
    assert record.dedupe_key("ada@example.com", salt) == _as_stored(
        record, "ada@example.com", salt)


def test_a_value_other_than_text_is_keyed_as_the_json_encoder_writes_it() -> None:
    odd: Any = 42
    record = ConsentRecord("newsletter", Action.GIVEN, AT, "import", ip=odd)

    assert record.dedupe_key("ada@example.com") == _as_stored(record, "ada@example.com")
