"""Mailchimp's JSON and syncd's member types, both ways: the request bodies, the fields
asked for, and the answers read into RemoteMember, WebhookConfig and MemberResult."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from syncd.clock import parse_timestamp
from syncd.esp.errors import EspTransientError
from syncd.esp.mailchimp_responses import batch_item_error
from syncd.esp.protocol import (
    MemberData,
    MemberResult,
    NewMember,
    RemoteMember,
    WebhookConfig,
)

# Mailchimp's batch subscribe endpoint takes at most 500 members per call.
MAX_BATCH = 500
# What the audience pull and the audit read of each member: nothing more is transferred.
AUDIENCE_FIELDS = [f"members.{name}" for name in (
    "email_address", "status", "last_changed", "unsubscribe_reason", "timestamp_opt",
    "ip_opt", "marketing_permissions", "interests")] + ["total_items"]
BATCH_ANSWER_FIELDS = ",".join(
    [f"{part}.{name}" for part in ("new_members", "updated_members")
     for name in ("email_address", "status")]
    + [f"errors.{name}" for name in ("email_address", "error", "error_code", "field",
                                     "field_message")]
    + ["total_created", "total_updated", "error_count"])


def member_body(data: MemberData) -> dict[str, Any]:
    """What syncd sends of a member: address, merge fields and the proof of opt-in."""
    body: dict[str, Any] = {"email_address": data.email}
    if data.merge_fields:
        body["merge_fields"] = dict(data.merge_fields)
    # Spelt out, not a getattr loop: a batch builds 500 of these per call.
    if data.ip_signup:
        body["ip_signup"] = data.ip_signup
    if data.timestamp_signup:
        body["timestamp_signup"] = data.timestamp_signup
    if data.ip_opt:
        body["ip_opt"] = data.ip_opt
    if data.timestamp_opt:
        body["timestamp_opt"] = data.timestamp_opt
    if data.marketing_permissions:
        body["marketing_permissions"] = permissions_body(data.marketing_permissions)
    if data.interests:
        body["interests"] = dict(data.interests)
    return body


def permissions_body(permissions: Mapping[str, bool]) -> list[dict[str, Any]]:
    """`[{marketing_permission_id, enabled}]`, what a write sends (section 6)."""
    return [{"marketing_permission_id": pid, "enabled": on}
            for pid, on in sorted(permissions.items())]


def remote_member(doc: Mapping[str, Any]) -> RemoteMember:
    """A member as Mailchimp lists it; fields it left out read as empty."""
    stamp = doc.get("timestamp_opt") or ""
    return RemoteMember(
        email=str(doc.get("email_address", "")),
        status=str(doc.get("status", "")),
        last_changed=parse_timestamp(str(doc.get("last_changed") or "1970-01-01T00:00:00")),
        unsubscribe_reason=doc.get("unsubscribe_reason") or None,
        merge_fields={k: str(v) for k, v in (doc.get("merge_fields") or {}).items()},
        ip_opt=doc.get("ip_opt") or None,
        timestamp_opt=parse_timestamp(stamp) if stamp else None,
        marketing_permissions={
            str(p.get("marketing_permission_id", "")): p.get("enabled") is True
            for p in doc.get("marketing_permissions") or [] if isinstance(p, dict)},
        interests={str(k): v is True for k, v in (doc.get("interests") or {}).items()},
    )


def webhook_config(doc: Mapping[str, Any]) -> WebhookConfig:
    return WebhookConfig(id=str(doc["id"]), url=str(doc.get("url", "")),
                         events=dict(doc.get("events") or {}),
                         sources=dict(doc.get("sources") or {}))


def batch_items(members: Sequence[NewMember]) -> list[dict[str, Any]]:
    """The `members` of a batch subscribe: each member's body, status and tags."""
    items = []
    for member in members:
        data = member.data
        item = member_body(data)
        item["status"] = member.status
        if data.tags:
            item["tags"] = list(data.tags)
        items.append(item)
    return items


def batch_results(doc: Mapping[str, Any], members: Sequence[NewMember],
                  uncertain: datetime | None) -> list[MemberResult]:
    """One result per member, in the order sent, from a batch subscribe answer; a member
    the answer does not mention failed for now. `uncertain`: when an earlier attempt that
    may have landed was sent (an `exists` may then be our own add)."""
    results: dict[str, MemberResult] = {}
    for created in doc.get("new_members") or []:
        email = str(created.get("email_address", "")).lower()
        results[email] = MemberResult(email, "created", str(created.get("status") or ""))
    for updated in doc.get("updated_members") or []:
        email = str(updated.get("email_address", "")).lower()
        results[email] = MemberResult(email, "written", str(updated.get("status") or ""))
    for item in doc.get("errors") or []:
        email = str(item.get("email_address", "")).lower()
        error = batch_item_error(item)
        results[email] = (MemberResult(email, "exists", uncertain_since=uncertain)
                          if error is None
                          else MemberResult(email, "failed", error=error))
    out = []
    for member in members:
        email = member.data.email.lower()
        out.append(results.get(email) or MemberResult(
            email, "failed", error=EspTransientError("add members: no answer for member")))
    return out
