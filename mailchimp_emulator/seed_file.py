"""Pre-existing members for the emulator, from a file: an audience that already had
members before syncd (the usual case for an organisation that installs it).

Formats: a JSON array of member objects, a JSON object `{"members": [...]}` (what
`GET /_emulator/members` returns), or JSON Lines (one member object per line). Each
object needs `email_address`; `status` defaults to `subscribed`; any other member field
(`merge_fields`, `tags`, `timestamp_opt`, `ip_opt`, `unsubscribe_reason`,
`status_before_archive`, ...) is taken as it is, with no API rule applied: this is
existing audience data, not an API write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mailchimp_emulator.members import Member

_FIELDS = frozenset(Member.__dataclass_fields__) - {"status", "last_changed", "needs_confirmation"}


class SeedFileError(ValueError):
    """The file cannot be read as members; the message names the line, never an address."""


def read_members(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")) and not _looks_like_lines(stripped):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SeedFileError(f"{path.name}: not valid JSON (line {exc.lineno})") from None
        items = doc.get("members") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise SeedFileError(f"{path.name}: expected a list of members or "
                                '{"members": [...]}')
        return [_member(item, f"{path.name}: member {n}") for n, item in enumerate(items, 1)]
    members = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            raise SeedFileError(f"{path.name}: line {n} is not valid JSON") from None
        members.append(_member(item, f"{path.name}: line {n}"))
    return members


def _looks_like_lines(text: str) -> bool:
    first = text.split("\n", 1)[0].strip()
    if not first.startswith("{"):
        return False
    try:
        doc = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(doc, dict) and "email_address" in doc


def _member(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("email_address"), str):
        raise SeedFileError(f"{where}: needs an `email_address` string")
    unknown = set(item) - _FIELDS - {"email_address", "status"}
    if unknown:
        raise SeedFileError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    return dict(item)


def seed_members(emulator: Any, members: list[dict[str, Any]]) -> int:
    """Seed these members (from `read_members`); returns how many."""
    for item in members:
        fields = dict(item)
        email = fields.pop("email_address")
        status = fields.pop("status", "subscribed")
        emulator.seed_member(email, status, **fields)
    return len(members)
