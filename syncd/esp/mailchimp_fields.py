"""A Mailchimp audience's GDPR fields and groups, read by name: the list's
`marketing_permissions` switch, the permissions' ids and texts off one member, and every
interest category with its interests (syncd.esp.target_fields resolves them per target)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from syncd.esp.mailchimp_transport import MailchimpTransport
from syncd.esp.protocol import AudienceFields

# Mailchimp's largest page; an audience has at most 60 categories of 60 interests.
MAX_FIELD_ITEMS = 1000


def read_audience_fields(http: MailchimpTransport, audience_id: str) -> AudienceFields:
    """The permissions' ids and texts come from one member (no other endpoint shows them,
    docs/mailchimp.md section 6). A few calls at the start of a run."""
    lists = http.lists
    list_doc = http.call("read audience", lists.get_list, audience_id,
                         fields=["id", "marketing_permissions"]) or {}
    members: list[Mapping[str, Any]] = []
    if list_doc.get("marketing_permissions") is True:
        doc = http.call("read marketing permissions", lists.get_list_members_info,
                        audience_id, count=1, fields=["members.marketing_permissions"]) or {}
        members = list(doc.get("members") or [])
    interests: dict[tuple[str, str], str] = {}
    doc = http.call("read interest categories", lists.get_list_interest_categories,
                    audience_id, count=MAX_FIELD_ITEMS,
                    fields=["categories.id", "categories.title"]) or {}
    for category in doc.get("categories") or []:
        found = http.call("read interests", lists.list_interest_category_interests,
                          audience_id, str(category["id"]), count=MAX_FIELD_ITEMS,
                          fields=["interests.id", "interests.name"]) or {}
        for interest in found.get("interests") or []:
            interests[(str(category.get("title", "")), str(interest.get("name", "")))] = (
                str(interest["id"]))
    return audience_fields(list_doc, members, interests)


def audience_fields(list_doc: Mapping[str, Any], member_docs: Sequence[Mapping[str, Any]],
                    interests: Mapping[tuple[str, str], str]) -> AudienceFields:
    """The list's GDPR switch, the permission texts and ids read off a member (the
    contract has no other place for them), and the interests by category and name."""
    gdpr = list_doc.get("marketing_permissions") is True
    permissions = {
        str(p.get("text", "")): str(p.get("marketing_permission_id", ""))
        for doc in member_docs[:1] for p in doc.get("marketing_permissions") or []
        if isinstance(p, dict)
    } if gdpr else {}
    return AudienceFields(gdpr=gdpr, permissions=permissions, interests=dict(interests))
