"""Audience webhooks as Mailchimp sends them: form-encoded bracket keys, POSTed.

Key order, `+` for spaces, `fired_at` as `YYYY-MM-DD HH:MM:SS` UTC with no zone and
a 10-hex `data[id]` follow real captured deliveries (tests/fixtures/webhooks/).
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from datetime import UTC
from urllib.parse import urlencode, urlsplit

from mailchimp_emulator.members import AudienceEvent, Member

USER_AGENT = "MailChimp.com"
VALIDATOR_USER_AGENT = "MailChimp.com WebHook Validator"
# Mailchimp cancels a delivery that takes longer than 10 seconds.
DELIVERY_TIMEOUT_S = 10.0

Pairs = list[tuple[str, str]]


@dataclass(frozen=True)
class Delivery:
    """One POST of one event to one URL; `status` is None when no answer came."""

    url: str
    event_type: str
    status: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _merges(event: AudienceEvent, member: Member, known: tuple[str, ...]) -> Pairs:
    values = dict.fromkeys(known, "")
    values.update(member.merge_fields)
    pairs = [("data[merges][EMAIL]", member.email_address)] + [
        (f"data[merges][{tag}]", value) for tag, value in values.items()
    ]
    return pairs + _groupings(event)


def _groupings(event: AudienceEvent) -> Pairs:
    """An audience with groups: `INTERESTS` (every chosen name) and per category
    `GROUPINGS[n][id|unique_id|name|groups]`, the names comma-joined, as in
    tests/fixtures/webhooks/subscribe-groupings.form (docs/mailchimp.md section 6)."""
    if not event.groupings:
        return []
    chosen = [names for _, _, names in event.groupings if names]
    pairs: Pairs = [("data[merges][INTERESTS]", ",".join(chosen))]
    for n, (category_id, title, names) in enumerate(event.groupings):
        key = f"data[merges][GROUPINGS][{n}]"
        pairs += [
            (f"{key}[id]", str(int(category_id[:5], 16))),
            (f"{key}[unique_id]", category_id),
            (f"{key}[name]", title),
            (f"{key}[groups]", names),
        ]
    return pairs


def _opt(pairs: Pairs, key: str, value: str | None) -> Pairs:
    return [*pairs, (key, value)] if value else pairs


def form_pairs(event: AudienceEvent, known_merge_fields: tuple[str, ...] = ()) -> Pairs:
    """The body's key/value pairs in Mailchimp's order for this event type."""
    head: Pairs = [
        ("type", event.type),
        ("fired_at", event.fired_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")),
    ]
    extra, member, list_id = event.extra, event.member, event.list_id
    if event.type == "campaign":
        return [
            *head,
            *[(f"data[{k}]", extra.get(k) or "") for k in ("id", "subject", "status", "reason")],
            ("data[list_id]", list_id),
        ]
    if member is None:
        raise ValueError(f"a {event.type} event needs a member")
    if event.type == "upemail":
        return [
            *head,
            ("data[list_id]", list_id),
            ("data[new_id]", extra.get("new_id") or ""),
            ("data[new_email]", extra.get("new_email") or ""),
            ("data[old_email]", extra.get("old_email") or ""),
        ]
    if event.type == "cleaned":
        pairs = _opt(
            [*head, ("data[list_id]", list_id)], "data[campaign_id]", extra.get("campaign_id")
        )
        return [
            *pairs,
            ("data[reason]", extra.get("reason") or ""),
            ("data[email]", member.email_address),
        ]
    ident: Pairs = [
        ("data[id]", member.unique_email_id),
        ("data[email]", member.email_address),
        ("data[email_type]", member.email_type),
    ]
    if event.type == "profile":
        body = [
            *head,
            ident[0],
            ("data[list_id]", list_id),
            *ident[1:],
            *_merges(event, member, known_merge_fields),
        ]
        return _opt(body, "data[ip_opt]", member.ip_opt)
    opted = [*_opt(ident, "data[ip_opt]", member.ip_opt), ("data[web_id]", str(member.web_id))]
    merges = _merges(event, member, known_merge_fields)
    if event.type == "subscribe":
        return [*head, *opted, *merges, ("data[list_id]", list_id)]
    # unsubscribe: action (may be absent in real deliveries), reason, then as subscribe.
    pairs = _opt(head, "data[action]", extra.get("action"))
    pairs = [
        *pairs,
        ("data[reason]", extra.get("reason") or ""),
        *opted,
        *_merges(event, member, known_merge_fields),
        ("data[list_id]", list_id),
    ]
    return _opt(pairs, "data[campaign_id]", extra.get("campaign_id"))


def encode(event: AudienceEvent, known_merge_fields: tuple[str, ...] = ()) -> bytes:
    return urlencode(form_pairs(event, known_merge_fields)).encode("ascii")


def post(url: str, event_type: str, body: bytes) -> Delivery:
    """POST one body. http.client, not urllib, so no proxy settings get in the way."""
    return _send("POST", url, event_type, body, USER_AGENT)


def validate(url: str) -> bool:
    """Mailchimp's check when a webhook is saved: a bare GET that must answer 200."""
    return _send("GET", url, "validate", None, VALIDATOR_USER_AGENT).status == 200


def _send(method: str, url: str, event_type: str, body: bytes | None, agent: str) -> Delivery:
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    connection = connection_class(parts.hostname or "", parts.port, timeout=DELIVERY_TIMEOUT_S)
    try:
        headers = {"User-Agent": agent}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return Delivery(url, event_type, response.status)
    except (OSError, http.client.HTTPException) as exc:
        return Delivery(url, event_type, None, type(exc).__name__)
    finally:
        connection.close()
