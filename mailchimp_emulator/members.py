"""Mailchimp members and the per-member rules, as pure functions.

Identity is the MD5 of the lower-cased address; the rules below are the 400 errors of
the Mailchimp reference (compliance state, forgotten, fake address, merge fields).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailchimp_emulator.problems import ApiProblem, field_error, invalid_resource

JSON = dict[str, Any]
Clock = Callable[[], datetime]

WRITABLE_STATUSES = frozenset({"subscribed", "unsubscribed", "cleaned", "pending", "transactional"})
# Mailchimp: unsubscribed and cleaned addresses are "in compliance state" for re-subscribes.
COMPLIANCE_STATES = frozenset({"unsubscribed", "cleaned"})


def subscriber_hash(email: str) -> str:
    """Mailchimp's member key: MD5 hex of the lower-cased address."""
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def iso(moment: datetime) -> str:
    """Mailchimp's timestamp shape, `2026-03-04T13:10:40+00:00`."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def iso_precise(moment: datetime) -> str:
    # last_changed keeps microseconds so that it is strictly monotonic and paging by it
    # is deterministic (Mailchimp itself shows whole seconds).
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def new_unique_email_id() -> str:
    return secrets.token_hex(5)  # 10 hex characters, as in real webhook `data[id]`


@dataclass(frozen=True)
class AudienceRules:
    """Switchable Mailchimp behaviour (the reference's 'unsettled' items and limits)."""

    # A 2026 report says the live API let an unsubscribed member be re-subscribed.
    allow_api_resubscribe: bool = False
    required_merge_fields: tuple[str, ...] = ()
    known_merge_fields: tuple[str, ...] = ("FNAME", "LNAME")
    refused_addresses: frozenset[str] = frozenset()
    # RFC 2606 reserves `.invalid`; Mailchimp refuses addresses it thinks are fake.
    refuse_invalid_tld: bool = True
    # Addresses Mailchimp turns away for now ("signed up to a lot of lists very recently").
    recent_signup_addresses: frozenset[str] = frozenset()
    # Mailchimp GETs a webhook URL when it is saved and refuses it unless it answers 200.
    validate_webhook_urls: bool = True
    max_batch_members: int = 500
    max_page_count: int = 1000


@dataclass
class Member:
    email_address: str
    status: str
    unique_email_id: str
    web_id: int
    last_changed: datetime
    merge_fields: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    email_type: str = "html"
    ip_signup: str = ""
    timestamp_signup: str = ""
    ip_opt: str = ""
    timestamp_opt: str = ""
    unsubscribe_reason: str = ""
    language: str = ""
    vip: bool = False
    # GDPR fields and groups set on the member: permission id / interest id -> on.
    marketing_permissions: dict[str, bool] = field(default_factory=dict)
    interests: dict[str, bool] = field(default_factory=dict)
    # What an archived member was before: re-adding it keeps the compliance rule.
    status_before_archive: str = ""
    # Once unsubscribed or cleaned, only the person's own confirmation (not an API
    # write, whatever statuses come in between) may make the member subscribed again.
    needs_confirmation: bool = False

    @property
    def id(self) -> str:
        return subscriber_hash(self.email_address)


@dataclass(frozen=True)
class AudienceEvent:
    """Something Mailchimp reports through an audience webhook."""

    type: str
    source: str
    fired_at: datetime
    list_id: str
    member: Member | None
    extra: Mapping[str, str | None] = field(default_factory=dict)
    # The audience's interest categories: (id, title, the member's chosen names joined).
    groupings: tuple[tuple[str, str, str], ...] = ()


def render(
    member: Member, *, list_id: str, known_merge_fields: tuple[str, ...], tag_ids: Mapping[str, int]
) -> JSON:
    """The member as Mailchimp's API shows it (known merge fields default to ""); the
    audience adds its interests and GDPR fields (audience_fields.py)."""
    merges = dict.fromkeys(known_merge_fields, "")
    merges.update(member.merge_fields)
    doc: JSON = {
        "id": member.id,
        "email_address": member.email_address,
        "unique_email_id": member.unique_email_id,
        "web_id": member.web_id,
        "email_type": member.email_type,
        "status": member.status,
        "unsubscribe_reason": member.unsubscribe_reason,
        "merge_fields": merges,
        "interests": {},
        "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
        "ip_signup": member.ip_signup,
        "timestamp_signup": member.timestamp_signup,
        "ip_opt": member.ip_opt,
        "timestamp_opt": member.timestamp_opt,
        "member_rating": 2,
        "last_changed": iso_precise(member.last_changed),
        "language": member.language,
        "vip": member.vip,
        "email_client": "",
        "source": "API - Generic",
        "tags_count": len(member.tags),
        "tags": [{"id": tag_ids.get(t, 0), "name": t} for t in member.tags],
        "list_id": list_id,
    }
    return doc


def apply_details(member: Member, body: Mapping[str, Any], sync_tags: bool | None) -> None:
    """The write's proof-of-opt-in details, VIP flag and tags onto the member."""
    for name in ("ip_signup", "timestamp_signup", "ip_opt", "timestamp_opt", "language",
                 "email_type"):
        value = body.get(name)
        if isinstance(value, str) and value:
            setattr(member, name, value)
    if isinstance(body.get("vip"), bool):
        member.vip = body["vip"]
    if sync_tags is not None:
        names = [
            t if isinstance(t, str) else str(t.get("name", "")) for t in body.get("tags") or []
        ]
        if sync_tags:
            member.tags = list(dict.fromkeys(names))
        else:
            member.tags = list(dict.fromkeys([*member.tags, *names]))


def looks_like_address(email: str) -> bool:
    local, at, domain = email.partition("@")
    return bool(local and at and "." in domain and " " not in email and "@" not in domain)


def check_address(email: Any) -> str:
    if not isinstance(email, str) or not looks_like_address(email):
        raise field_error("email_address", "Please provide a valid email address.")
    return email


def check_new_address(rules: AudienceRules, forgotten: Collection[str], email: str) -> None:
    """Mailchimp's refusals for an address it does not hold yet."""
    if subscriber_hash(email) in forgotten:
        raise ApiProblem(
            400,
            "Forgotten Email Not Subscribed",
            f"{email} was permanently deleted and cannot be re-imported. "
            "The contact must re-subscribe to get back on the list.",
        )
    lowered = email.lower()
    domain = lowered.rpartition("@")[2]
    fake = lowered in rules.refused_addresses or (
        rules.refuse_invalid_tld and (domain == "invalid" or domain.endswith(".invalid"))
    )
    if fake:
        raise invalid_resource(f"{email} looks fake or invalid, please enter a real email address.")
    if lowered in rules.recent_signup_addresses:
        raise invalid_resource(
            f"{email} has signed up to a lot of lists very recently; "
            "we're not allowing more signups for now"
        )


def _merge_error(tag: str, message: str) -> dict[str, str]:
    return {"field": f"merge_fields.{tag}", "message": message}


def check_merge_fields(
    rules: AudienceRules, body: Mapping[str, Any], *, is_new: bool, skip_validation: bool
) -> dict[str, str]:
    """The member's merge fields from a write; unknown tags and missing required ones fail."""
    raw = body.get("merge_fields") or {}
    if not isinstance(raw, dict):
        raise field_error("merge_fields", "Merge fields must be an object.")
    errors = [
        _merge_error(tag, f"Merge field {tag} does not exist.")
        if tag not in rules.known_merge_fields
        else _merge_error(tag, "Merge field values must be strings.")
        for tag, value in raw.items()
        if tag not in rules.known_merge_fields or not isinstance(value, str)
    ]
    if not skip_validation:  # Mailchimp's `skip_merge_validation` query parameter
        errors += [
            _merge_error(tag, "Please enter a value")
            for tag in rules.required_merge_fields
            if (is_new and tag not in raw) or raw.get(tag) == ""
        ]
    if errors:
        raise invalid_resource("Your merge fields were invalid.", errors)
    return dict(raw)


def check_status(wanted: Any) -> None:
    if wanted is not None and wanted not in WRITABLE_STATUSES:
        allowed = ", ".join(sorted(WRITABLE_STATUSES))
        raise field_error("status", f"Value must be one of: {allowed}")


def check_transition(
    rules: AudienceRules, email: str, before: str, wanted: str, *, needs_confirmation: bool
) -> None:
    """Mailchimp refuses to subscribe an unsubscribed or cleaned address."""
    if rules.allow_api_resubscribe or wanted == before:
        return
    # A fresh opt-in (pending: Mailchimp mails a confirmation) is allowed after an
    # unsubscribe, never after a bounce: there is no mailbox to confirm from. Strict
    # where Mailchimp is unsettled: no detour (unsubscribed -> pending or transactional
    # -> subscribed) gets round the rule by API, so such a bug in syncd cannot hide.
    refused = (before in COMPLIANCE_STATES or needs_confirmation) and wanted == "subscribed"
    if refused or (wanted == "pending" and before == "cleaned"):
        raise ApiProblem(
            400,
            "Member In Compliance State",
            f"{email} is in a compliance state due to unsubscribe, bounce, or "
            "compliance review and cannot be subscribed.",
        )
