"""Time in one place: everything syncd stores is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive values are UTC (SQLite returns naive datetimes; Mailchimp's `fired_at` has no zone)."""
    zone = value.tzinfo
    if zone is UTC:  # the common case: converting costs a tenth of an import's CPU
        return value
    if zone is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 or Mailchimp's `YYYY-MM-DD HH:MM:SS`; naive means UTC."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    return as_utc(datetime.fromisoformat(cleaned))
