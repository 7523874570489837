"""The audience's state and its one member write: members in change order, forgotten
addresses, confirmation mails, webhooks, the change clock and rendering.

One re-entrant lock guards the members, so every public method is atomic; a 500-member
batch is one lock hold of a few milliseconds. The per-member rules are pure functions
in `members.py`."""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from mailchimp_emulator.audience_fields import NO_FIELDS, AudienceFields, FieldsSetup
from mailchimp_emulator.members import (
    COMPLIANCE_STATES,
    JSON,
    AudienceEvent,
    AudienceRules,
    Clock,
    Member,
    apply_details,
    check_address,
    check_merge_fields,
    check_new_address,
    check_status,
    check_transition,
    iso,
    looks_like_address,
    new_unique_email_id,
    render,
    subscriber_hash,
)
from mailchimp_emulator.problems import ApiProblem, field_error, not_found
from mailchimp_emulator.webhook_registry import WebhookRegistry

DEFAULT_LIST_ID = "f1243a3b12"
_ONE_TICK = timedelta(microseconds=1)

def _utc_now() -> datetime:
    return datetime.now(UTC)


class AudienceCore:
    """One Mailchimp audience (list): its state and the write every operation goes through."""

    def __init__(
        self,
        list_id: str = DEFAULT_LIST_ID,
        *,
        name: str = "syncd emulator audience",
        rules: AudienceRules | None = None,
        clock: Clock | None = None,
        fields: FieldsSetup = NO_FIELDS,
    ) -> None:
        self.list_id = list_id
        self.name = name
        self.setup = fields
        self._rules = rules or AudienceRules()
        self._clock = clock or _utc_now
        self._lock = threading.RLock()
        self._created = self._clock()
        self.webhooks = WebhookRegistry(list_id)
        self._reset_locked()

    def _reset_locked(self) -> None:
        # Ordered by last_changed: every change moves the member to the end.
        self._members: OrderedDict[str, Member] = OrderedDict()
        self._forgotten: set[str] = set()
        self._confirmations: dict[str, int] = {}
        self._tag_ids: dict[str, int] = {}
        self.fields = AudienceFields(self.list_id, self.setup)
        self.webhooks.clear()
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._next_web_id = 100_000
        self._api_events: list[AudienceEvent] = []
        self._version = 0  # bumped by every change; keys the listing cache
        self._listing: tuple[tuple[Any, ...], list[Member]] | None = None

    def reset(self) -> None:
        """Forget everything: members, forgotten addresses, webhooks, counters; GDPR
        fields and groups as the audience was set up with."""
        with self._lock:
            self._reset_locked()

    # -- settings -------------------------------------------------------------------

    @property
    def rules(self) -> AudienceRules:
        return self._rules

    @rules.setter
    def rules(self, rules: AudienceRules) -> None:
        with self._lock:
            self._rules = rules

    def configure(self, **changes: Any) -> AudienceRules:
        """Replace some rules, e.g. `configure(allow_api_resubscribe=True)`."""
        with self._lock:
            for key in ("required_merge_fields", "known_merge_fields"):
                if key in changes:
                    changes[key] = tuple(changes[key])
            for key in ("refused_addresses", "recent_signup_addresses"):
                if key in changes:
                    changes[key] = frozenset(a.lower() for a in changes[key])
            self._rules = dataclasses.replace(self._rules, **changes)
            return self._rules

    # -- helpers --------------------------------------------------------------------

    def _stamp(self) -> datetime:
        """A strictly increasing change time, so paging by last_changed is deterministic."""
        now = self._clock().astimezone(UTC)
        self._last_stamp = max(now, self._last_stamp + _ONE_TICK)
        return self._last_stamp

    def _touch(self, key: str, member: Member) -> None:
        self._version += 1
        member.last_changed = self._stamp()
        self._members[key] = member
        self._members.move_to_end(key)

    def _render(self, member: Member) -> JSON:
        for tag in member.tags:
            self._tag_ids.setdefault(tag, 1000 + len(self._tag_ids))
        doc = render(
            member,
            list_id=self.list_id,
            known_merge_fields=self._rules.known_merge_fields,
            tag_ids=self._tag_ids,
        )
        self.fields.render_member(doc, member.marketing_permissions, member.interests)
        return doc

    def _existing(self, key: str) -> Member:
        member = self._members.get(key.lower())
        if member is None:
            raise not_found()
        return member

    def _check_new_address(self, email: str) -> None:
        check_new_address(self._rules, self._forgotten, email)

    # -- the core write -------------------------------------------------------------

    def _write(
        self,
        email: Any,
        body: Mapping[str, Any],
        *,
        status: Any,
        status_if_new: Any = None,
        create_only: bool = False,
        skip_merge_validation: bool = False,
        sync_tags: bool | None = None,
    ) -> tuple[bool, Member]:
        """Add or update one member; returns (created, member). Raises ApiProblem."""
        email = check_address(email)
        key = subscriber_hash(email)
        current = self._members.get(key)
        is_new = current is None or current.status == "archived"
        if current is not None and not is_new and create_only:
            raise ContactExistsError(email)
        if is_new:
            self._check_new_address(email)
            wanted = status_if_new or status
            if not wanted:
                raise field_error("status_if_new", "This value should not be blank.")
        else:
            wanted = status
        check_status(wanted)
        merges = check_merge_fields(
            self._rules, body, is_new=is_new, skip_validation=skip_merge_validation
        )
        permissions, interests = self.fields.check_write(body)
        before = (
            current.status_before_archive
            if current and is_new
            else (current.status if current else "")
        )
        locked = bool(current and current.needs_confirmation)
        if wanted:
            check_transition(self._rules, email, before, wanted, needs_confirmation=locked)

        if current is None:
            member = Member(email, "", new_unique_email_id(), self._web_id(), self._last_stamp)
        else:
            member = dataclasses.replace(
                current,
                merge_fields=dict(current.merge_fields),
                tags=list(current.tags),
                marketing_permissions=dict(current.marketing_permissions),
                interests=dict(current.interests),
            )
        member.merge_fields.update(merges)
        member.marketing_permissions.update(permissions)
        member.interests.update(interests)
        apply_details(member, body, sync_tags)
        if wanted and (wanted != member.status or wanted == "pending" or is_new):
            self._set_status(key, member, wanted, reason="N/A (Unsubscribed by API)")
        if member != current:
            self._touch(key, member)
            self._record_api_events(current, member)
        return is_new, member

    def _web_id(self) -> int:
        self._next_web_id += 1
        return self._next_web_id

    def _set_status(self, key: str, member: Member, status: str, *, reason: str) -> None:
        if status == "pending":
            # Every accepted write that sets `pending` makes Mailchimp mail a confirmation,
            # also pending -> pending (it re-sends the opt-in mail).
            self._confirmations[key] = self._confirmations.get(key, 0) + 1
        if status == "subscribed" and not member.timestamp_opt:
            member.timestamp_opt = iso(self._clock())
        member.needs_confirmation = member.needs_confirmation or status in COMPLIANCE_STATES
        member.unsubscribe_reason = reason if status == "unsubscribed" else ""
        member.status = status
        member.status_before_archive = ""

    def _record_api_events(self, before: Member | None, after: Member) -> None:
        """Mailchimp echoes API writes to webhooks registered with `sources.api`."""
        if not self.webhooks.any_from_api():
            return
        kind = None
        if before is None or before.status != after.status:
            kind = {
                "subscribed": "subscribe",
                "unsubscribed": "unsubscribe",
                "cleaned": "cleaned",
            }.get(after.status)
        elif (before.merge_fields, before.interests, before.marketing_permissions) != (
            after.merge_fields, after.interests, after.marketing_permissions
        ):
            kind = "profile"
        if kind:
            extra = {"action": "unsub", "reason": "manual"} if kind == "unsubscribe" else {}
            self._api_events.append(self._event(kind, after, "api", **extra))

    def take_api_events(self) -> list[AudienceEvent]:
        """Events caused by API writes, for delivery to `sources.api` webhooks."""
        with self._lock:
            events, self._api_events = self._api_events, []
            return events

    def _check_rename(self, new_email: str) -> None:
        if not looks_like_address(new_email):
            raise field_error("email_address", "Please provide a valid email address.")
        if subscriber_hash(new_email) in self._members:
            raise ApiProblem(400, "Member Exists", f"{new_email} is already a list member.")
        self._check_new_address(new_email)

    def _rename(self, current: Member, new_email: str) -> None:
        self._check_rename(new_email)
        new_key = subscriber_hash(new_email)
        del self._members[current.id]
        current.email_address = new_email
        current.unique_email_id = new_unique_email_id()
        self._touch(new_key, current)

    def _live(self, email: str) -> Member:
        member = self._members.get(subscriber_hash(email))
        if member is None or member.status == "archived":
            raise LookupError("no such member")
        return member

    def _event(
        self, kind: str, member: Member | None, source: str, **extra: str | None
    ) -> AudienceEvent:
        snapshot = copy.deepcopy(member) if member else None
        groupings = tuple(self.fields.groupings(member.interests)) if member else ()
        return AudienceEvent(
            kind, source, self._clock(), self.list_id, snapshot, extra, groupings
        )


class ContactExistsError(Exception):
    def __init__(self, email: str) -> None:
        super().__init__("contact exists")
        self.email = email


