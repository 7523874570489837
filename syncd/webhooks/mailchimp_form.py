"""Mailchimp audience webhook bodies -> one normalised `InboundEvent` (pure, no I/O).

Mailchimp POSTs `application/x-www-form-urlencoded` with PHP-style bracket keys
(`data[merges][GROUPINGS][0][name]`); `parse_qs` gives flat keys, so the nesting is built
here. Real deliveries vary: an unsubscribe may have no `data[action]`, merges may be empty
or carry GROUPINGS, any key may be missing, empty or extra (docs/mailchimp.md section 1). The
parser tolerates all of that; only an unreadable body, a missing `type`, a NUL character
(raw or `%00`: PostgreSQL text cannot hold it, and no real delivery carries one) or a
`fired_at` outside any date Mailchimp can send is refused. Refusing here, with a 400,
keeps such a body from looping as a 503 on every retry or from being parked later.
Nothing here ever puts the body or an address into an error message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from syncd.addresses import parse_address
from syncd.clock import as_utc
from syncd.errors import InputError
from syncd.schema import EventKind

# EventKind is the inbox table's vocabulary (syncd.schema); callers take it from here too.
__all__ = ["EventKind", "InboundEvent", "MalformedBody", "chosen_groups", "decode_pairs",
           "encode_event",
           "event_from_fields", "nest", "normalise_address", "parse_body", "parse_fired_at"]

# A real delivery has at most a few dozen fields; the cap stops hash-flooding bodies.
MAX_FIELDS = 1000
# Nesting deeper than Mailchimp's (data[merges][GROUPINGS][0][name]) is refused too.
MAX_DEPTH = 6
# The inbox's list_id column (syncd.schema.inbox).
MAX_LIST_ID = 64
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
FIRED_AT_FORMAT = "%Y-%m-%d %H:%M:%S"
# Mailchimp was founded in 2001; a fired_at before this, or in a far future, is no real
# delivery (and year 1 or 9999 overflows the date arithmetic of the purge).
EARLIEST_FIRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_FIRED_AT = datetime(9000, 1, 1, tzinfo=UTC)


_KINDS = {kind.value: kind for kind in EventKind if kind is not EventKind.UNKNOWN}


class MalformedBody(InputError):
    """The body cannot be read as a Mailchimp webhook; the message names why (no content)."""


@dataclass(frozen=True)
class InboundEvent:
    """One audience event, from a webhook or built by the reconciliation pull.

    Addresses are normalised keys (trimmed, lower-cased) as `contacts.email_key` holds
    them; `None` when absent or empty. `fired_at` is UTC (Mailchimp sends no zone)."""

    kind: EventKind
    type: str  # the `type` as sent, lower-cased (kept for UNKNOWN kinds)
    fired_at: datetime | None = None
    list_id: str | None = None
    email: str | None = None
    email_display: str | None = None
    old_email: str | None = None
    new_email: str | None = None
    new_email_display: str | None = None
    reason: str | None = None
    action: str | None = None
    campaign_id: str | None = None
    ip_opt: str | None = None
    merges: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str | None:
        """The address the event is about: the old one for `upemail`."""
        return self.old_email if self.kind is EventKind.UPEMAIL else self.email

    @property
    def is_abuse(self) -> bool:
        return (self.reason or "").lower() == "abuse"


def decode_pairs(body: bytes, *, max_fields: int = MAX_FIELDS) -> list[tuple[str, str]]:
    """Strict form decoding: UTF-8 only, well-formed percent escapes, bounded field count."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("body is not valid UTF-8") from None
    if _BAD_PERCENT.search(text):
        raise MalformedBody("body has a broken percent-encoding")
    if text.count("&") + 1 > max_fields:
        raise MalformedBody(f"body has more than {max_fields} fields")
    if "\x00" in text:
        raise MalformedBody("body contains a NUL character")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                          encoding="utf-8", errors="strict", max_num_fields=max_fields)
    except UnicodeDecodeError:
        raise MalformedBody("body has percent-encoded bytes that are not UTF-8") from None
    except ValueError:
        raise MalformedBody(f"body has more than {max_fields} fields") from None
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            raise MalformedBody("body has a percent-encoded NUL character (%00)")
    return pairs


def _path(key: str) -> list[str] | None:
    """`data[merges][FNAME]` -> ["data", "merges", "FNAME"]; None for a malformed key."""
    head, _, rest = key.partition("[")
    if not rest:
        return [key]
    parts = _BRACKETS.findall("[" + rest)
    # Everything after the head must be bracket groups, or the key is not PHP-style.
    if "".join(f"[{p}]" for p in parts) != "[" + rest or len(parts) >= MAX_DEPTH:
        return None
    return [head, *parts]


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Flat bracket keys -> nested dicts (list indices stay string keys). A later value
    for the same key wins, as in PHP; a scalar never overwrites a nested group."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        path = _path(key)
        if path is None or not path[0]:
            root.setdefault("_unparsed", {})[key] = value
            continue
        node = root
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        if not isinstance(node.get(path[-1]), dict):
            node[path[-1]] = value
    return root


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return stripped or None


def normalise_address(raw: Any) -> tuple[str, str] | None:
    """(key, display) or None. A syntactically odd address Mailchimp still sent is kept
    lower-cased so an unsubscribe for it still suppresses that exact address."""
    text = _text(raw)
    if text is None:
        return None
    try:
        address = parse_address(text)
    except InputError:
        return (text.lower(), text) if "@" in text else None
    return address.key, address.display


def parse_fired_at(raw: Any) -> datetime | None:
    """UTC, or None when unreadable (tolerated: the inbox then uses the time of receipt).
    A readable date outside Mailchimp's possible range is refused (MalformedBody)."""
    text = _text(raw)
    if text is None:
        return None
    try:
        found = datetime.strptime(text, FIRED_AT_FORMAT)
    except ValueError:
        try:
            found = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    try:
        moment = as_utc(found)
    except OverflowError:  # an offset that pushes year 1 or 9999 out of range
        raise MalformedBody("fired_at is out of range") from None
    if not EARLIEST_FIRED_AT <= moment < LATEST_FIRED_AT:
        raise MalformedBody(f"fired_at is out of range (must be between "
                            f"{EARLIEST_FIRED_AT.year} and {LATEST_FIRED_AT.year})")
    return moment


def _flat_merges(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def event_from_fields(fields: Mapping[str, Any]) -> InboundEvent:
    """The nested fields of one delivery -> InboundEvent. Raises MalformedBody only when
    `type` is missing; an unknown type is UNKNOWN, never an error."""
    raw_type = _text(fields.get("type"))
    if raw_type is None:
        raise MalformedBody("body has no 'type' field")
    kind = _KINDS.get(raw_type.lower(), EventKind.UNKNOWN)
    data = fields.get("data")
    data = data if isinstance(data, dict) else {}
    email = normalise_address(data.get("email"))
    old = normalise_address(data.get("old_email"))
    new = normalise_address(data.get("new_email"))
    # A campaign's `data[id]` is the campaign id; other types send it as `campaign_id`.
    campaign = data.get("id") if kind is EventKind.CAMPAIGN else data.get("campaign_id")
    action, reason = _text(data.get("action")), _text(data.get("reason"))
    list_id = _text(data.get("list_id"))
    if list_id is not None and len(list_id) > MAX_LIST_ID:
        # Mailchimp's list ids are 10 characters; the inbox column holds 64. A longer one
        # is not Mailchimp's, and storing it would fail on PostgreSQL (a 503, retried).
        raise MalformedBody(f"list_id is longer than {MAX_LIST_ID} characters")
    return InboundEvent(
        kind=kind,
        type=raw_type.lower()[:32],
        fired_at=parse_fired_at(fields.get("fired_at")),
        list_id=list_id,
        email=email[0] if email else None,
        email_display=email[1] if email else None,
        old_email=old[0] if old else None,
        new_email=new[0] if new else None,
        new_email_display=new[1] if new else None,
        reason=reason.lower() if reason else None,
        action=action.lower() if action else None,
        campaign_id=_text(campaign),
        ip_opt=_text(data.get("ip_opt")),
        merges=_flat_merges(data.get("merges")),
        fields=fields,
    )


def chosen_groups(event: InboundEvent) -> dict[str, frozenset[str]]:
    """Per interest category the body reports (`data[merges][GROUPINGS][n][name]`), the
    group names the person has ticked (`[groups]`, comma-separated, `\\,` for a comma in
    a name; docs/mailchimp.md section 6). Categories the body does not carry are absent:
    nothing is known of them."""
    data = event.fields.get("data")
    merges = data.get("merges") if isinstance(data, dict) else None
    groupings = merges.get("GROUPINGS") if isinstance(merges, dict) else None
    if not isinstance(groupings, dict):
        return {}
    out: dict[str, frozenset[str]] = {}
    for item in groupings.values():
        if not isinstance(item, dict) or _text(item.get("name")) is None:
            continue
        raw = item.get("groups")
        raw = raw if isinstance(raw, str) else ""
        names = (n.replace("\\,", ",").strip() for n in re.split(r"(?<!\\),", raw))
        out[str(item["name"]).strip()] = frozenset(n for n in names if n)
    return out


def parse_body(body: bytes, *, max_fields: int = MAX_FIELDS) -> InboundEvent:
    """Raw form body -> InboundEvent; MalformedBody names what is wrong, never the content."""
    return event_from_fields(nest(decode_pairs(body, max_fields=max_fields)))


def encode_event(event: InboundEvent) -> str:
    """A form body in Mailchimp's format for an event built elsewhere (reconciliation),
    so a stored event is always re-applied through `parse_body`."""
    pairs: list[tuple[str, str]] = [("type", event.type)]
    if event.fired_at is not None:
        pairs.append(("fired_at", as_utc(event.fired_at).strftime(FIRED_AT_FORMAT)))
    data = {"list_id": event.list_id, "email": event.email_display or event.email,
            "old_email": event.old_email, "new_email": event.new_email_display or event.new_email,
            "reason": event.reason, "action": event.action, "campaign_id": event.campaign_id,
            "ip_opt": event.ip_opt}
    pairs += [(f"data[{name}]", value) for name, value in data.items() if value]
    pairs += [(f"data[merges][{tag}]", value) for tag, value in event.merges.items()]
    return urlencode(pairs)
