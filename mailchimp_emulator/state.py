"""The in-memory Mailchimp audience: members, forgotten addresses, webhooks.

Pure Python, no HTTP: `api.py` calls one method here and renders the returned JSON or
the raised `ApiProblem`. One re-entrant lock guards the members, so every method is
atomic; a 500-member batch is one lock hold of a few milliseconds. The per-member rules
themselves are pure functions in `members.py`.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from mailchimp_emulator.members import (
    COMPLIANCE_STATES,
    JSON,
    AudienceEvent,
    AudienceRules,
    Clock,
    Member,
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
from mailchimp_emulator.problems import ApiProblem, field_error, invalid_resource, not_found
from mailchimp_emulator.webhook_registry import WebhookRegistry

__all__ = ["DEFAULT_LIST_ID", "Audience", "AudienceEvent", "AudienceRules", "Clock", "Member"]

DEFAULT_LIST_ID = "f1243a3b12"
_ONE_TICK = timedelta(microseconds=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Audience:
    """One Mailchimp audience (list): members, forgotten addresses, webhooks."""

    def __init__(
        self,
        list_id: str = DEFAULT_LIST_ID,
        *,
        name: str = "syncd emulator audience",
        rules: AudienceRules | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.list_id = list_id
        self.name = name
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
        self.webhooks.clear()
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._next_web_id = 100_000
        self._api_events: list[AudienceEvent] = []
        self._version = 0  # bumped by every change; keys the listing cache
        self._listing: tuple[tuple[Any, ...], list[Member]] | None = None

    def reset(self) -> None:
        """Forget everything: members, forgotten addresses, webhooks, counters."""
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
        return render(
            member,
            list_id=self.list_id,
            known_merge_fields=self._rules.known_merge_fields,
            tag_ids=self._tag_ids,
        )

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
            raise _ContactExistsError(email)
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
                marketing_permissions=list(current.marketing_permissions),
            )
        member.merge_fields.update(merges)
        self._apply_details(member, body, sync_tags)
        if wanted and (wanted != member.status or wanted == "pending" or is_new):
            self._set_status(key, member, wanted, reason="N/A (Unsubscribed by API)")
        if member != current:
            self._touch(key, member)
            self._record_api_events(current, member)
        return is_new, member

    def _web_id(self) -> int:
        self._next_web_id += 1
        return self._next_web_id

    def _apply_details(
        self, member: Member, body: Mapping[str, Any], sync_tags: bool | None
    ) -> None:
        for name in (
            "ip_signup",
            "timestamp_signup",
            "ip_opt",
            "timestamp_opt",
            "language",
            "email_type",
        ):
            value = body.get(name)
            if isinstance(value, str) and value:
                setattr(member, name, value)
        if isinstance(body.get("vip"), bool):
            member.vip = body["vip"]
        permissions = body.get("marketing_permissions")
        if isinstance(permissions, list):
            by_id = {p.get("marketing_permission_id"): p for p in member.marketing_permissions}
            for item in permissions:
                if isinstance(item, dict):
                    by_id[item.get("marketing_permission_id")] = dict(item)
            member.marketing_permissions = list(by_id.values())
        if sync_tags is not None:
            names = [
                t if isinstance(t, str) else str(t.get("name", "")) for t in body.get("tags") or []
            ]
            if sync_tags:
                member.tags = list(dict.fromkeys(names))
            else:
                member.tags = list(dict.fromkeys([*member.tags, *names]))

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
        elif before.merge_fields != after.merge_fields:
            kind = "profile"
        if kind:
            extra = {"action": "unsub", "reason": "manual"} if kind == "unsubscribe" else {}
            self._api_events.append(
                AudienceEvent(kind, "api", self._clock(), self.list_id, copy.deepcopy(after), extra)
            )

    def take_api_events(self) -> list[AudienceEvent]:
        """Events caused by API writes, for delivery to `sources.api` webhooks."""
        with self._lock:
            events, self._api_events = self._api_events, []
            return events

    # -- API operations -------------------------------------------------------------

    def info(self) -> JSON:
        with self._lock:
            counts: dict[str, int] = {}
            for member in self._members.values():
                counts[member.status] = counts.get(member.status, 0) + 1
            return {
                "id": self.list_id,
                "web_id": 1,
                "name": self.name,
                "permission_reminder": "You signed up for updates on our website.",
                "double_optin": True,
                "marketing_permissions": False,
                "date_created": iso(self._created),
                "list_rating": 0,
                "stats": {
                    "member_count": counts.get("subscribed", 0),
                    "unsubscribe_count": counts.get("unsubscribed", 0),
                    "cleaned_count": counts.get("cleaned", 0),
                    "total_contacts": sum(counts.values()),
                    "member_count_since_send": 0,
                    "unsubscribe_count_since_send": 0,
                    "cleaned_count_since_send": 0,
                    "last_sub_date": "",
                    "last_unsub_date": "",
                },
            }

    def get_member(self, key: str) -> JSON:
        with self._lock:
            return self._render(self._existing(key))

    def put_member(
        self, key: str, body: Mapping[str, Any], *, skip_merge_validation: bool = False
    ) -> JSON:
        """`PUT .../members/{hash}`: add-or-update; `status_if_new` only for new members."""
        email = body.get("email_address")
        if not isinstance(email, str) or subscriber_hash(email) != key.lower():
            raise field_error(
                "email_address", "The email address does not match the subscriber hash."
            )
        with self._lock:
            _, member = self._write(
                email,
                body,
                status=body.get("status"),
                status_if_new=body.get("status_if_new"),
                skip_merge_validation=skip_merge_validation,
            )
            return self._render(member)

    def add_member(self, body: Mapping[str, Any], *, skip_merge_validation: bool = False) -> JSON:
        """`POST .../members`: create only."""
        with self._lock:
            try:
                _, member = self._write(
                    body.get("email_address"),
                    body,
                    status=body.get("status"),
                    create_only=True,
                    skip_merge_validation=skip_merge_validation,
                    sync_tags=False,
                )
            except _ContactExistsError as exists:
                raise ApiProblem(
                    400,
                    "Member Exists",
                    f"{exists.email} is already a list member. "
                    "Use PUT to insert or update list members.",
                ) from None
            return self._render(member)

    def patch_member(
        self, key: str, body: Mapping[str, Any], *, skip_merge_validation: bool = False
    ) -> JSON:
        """`PATCH .../members/{hash}`: update an existing member, 404 otherwise."""
        with self._lock:
            current = self._existing(key)
            new_email = body.get("email_address")
            renamed = (
                isinstance(new_email, str) and new_email.lower() != current.email_address.lower()
            )
            if renamed:
                self._check_rename(str(new_email))
            _, member = self._write(
                current.email_address,
                body,
                status=body.get("status"),
                skip_merge_validation=skip_merge_validation,
            )
            if renamed:
                self._rename(member, str(new_email))
            return self._render(member)

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

    def batch(self, body: Mapping[str, Any], *, skip_merge_validation: bool = False) -> JSON:
        """`POST /lists/{id}`: batch subscribe/unsubscribe, per-member errors."""
        items = body.get("members")
        if not isinstance(items, list):
            raise field_error("members", "This value should not be blank.")
        if len(items) > self._rules.max_batch_members:
            raise field_error(
                "members",
                f"You can only add or update {self._rules.max_batch_members} members in one call.",
            )
        update_existing = bool(body.get("update_existing", False))
        sync_tags = bool(body.get("sync_tags", False))
        created: list[JSON] = []
        updated: list[JSON] = []
        errors: list[JSON] = []
        seen: set[str] = set()
        with self._lock:
            for item in items:
                item_map: Mapping[str, Any] = item if isinstance(item, dict) else {}
                email = item_map.get("email_address")
                try:
                    if isinstance(email, str) and email.lower() in seen:
                        raise invalid_resource(
                            f"{email} was submitted more than once in this batch."
                        )
                    if isinstance(email, str):
                        seen.add(email.lower())
                    # Batch items carry `status` only; there is no status_if_new here.
                    is_new, member = self._write(
                        email,
                        item_map,
                        status=item_map.get("status"),
                        create_only=not update_existing,
                        skip_merge_validation=skip_merge_validation,
                        sync_tags=sync_tags,
                    )
                except _ContactExistsError:
                    errors.append(
                        _batch_error(
                            email,
                            f"{email} is already a list member, do you want to update? "
                            "please provide update_existing:true in the request body",
                            "ERROR_CONTACT_EXISTS",
                        )
                    )
                    continue
                except ApiProblem as problem:
                    first = problem.errors[0] if problem.errors else {}
                    errors.append(
                        _batch_error(
                            email,
                            problem.detail,
                            "ERROR_GENERIC",
                            first.get("field", ""),
                            first.get("message", ""),
                        )
                    )
                    continue
                (created if is_new else updated).append(self._render(member))
        return {
            "new_members": created,
            "updated_members": updated,
            "errors": errors,
            "total_created": len(created),
            "total_updated": len(updated),
            "error_count": len(errors),
        }

    def list_members(
        self,
        *,
        status: str | None = None,
        since_last_changed: datetime | None = None,
        before_last_changed: datetime | None = None,
        count: int = 10,
        offset: int = 0,
        sort_dir: str = "ASC",
    ) -> JSON:
        """`GET .../members`, ordered by last_changed (archived only when asked for)."""
        if not 0 <= count <= self._rules.max_page_count:
            raise field_error("count", f"count must be between 0 and {self._rules.max_page_count}.")
        if offset < 0:
            raise field_error("offset", "offset must not be negative.")
        with self._lock:
            query = (self._version, status, since_last_changed, before_last_changed, sort_dir)
            if self._listing is None or self._listing[0] != query:
                # Paging repeats one query with growing offsets: match once per version.
                self._listing = (
                    query,
                    self._matching(status, since_last_changed, before_last_changed, sort_dir),
                )
            matches = self._listing[1]
            page = matches[offset : offset + count]
            return {
                "members": [self._render(m) for m in page],
                "list_id": self.list_id,
                "total_items": len(matches),
            }

    def _matching(
        self, status: str | None, since: datetime | None, before: datetime | None, sort_dir: str
    ) -> list[Member]:
        if since is not None:
            # In last_changed order: walk back only as far as needed. Inclusive (>=), so a
            # watermark taken from the last member seen never skips a change.
            window: list[Member] = []
            for member in reversed(self._members.values()):
                if member.last_changed < since:
                    break
                window.append(member)
            window.reverse()
        else:
            window = list(self._members.values())
        matches = [
            m
            for m in window
            if (m.status == status if status else m.status != "archived")
            and (before is None or m.last_changed < before)
        ]
        if sort_dir.upper() == "DESC":
            matches.reverse()
        return matches

    def set_tags(self, key: str, body: Mapping[str, Any]) -> None:
        """`POST .../members/{hash}/tags`: activate or deactivate tags."""
        tags = body.get("tags")
        if not isinstance(tags, list):
            raise field_error("tags", "This value should not be blank.")
        with self._lock:
            member = self._existing(key)
            names = list(member.tags)
            for tag in tags:
                if not isinstance(tag, dict) or not isinstance(tag.get("name"), str):
                    raise field_error("tags", "Each tag needs a name.")
                name, wanted = tag["name"], tag.get("status", "active")
                if wanted == "active" and name not in names:
                    names.append(name)
                elif wanted == "inactive" and name in names:
                    names.remove(name)
            if names != member.tags:
                member.tags = names
                self._touch(member.id, member)

    def archive(self, key: str) -> None:
        """`DELETE .../members/{hash}`: Mailchimp archives, it does not delete."""
        with self._lock:
            member = self._existing(key)
            if member.status != "archived":
                member.status_before_archive = member.status
                member.status = "archived"
                self._touch(member.id, member)

    def delete_permanent(self, key: str) -> None:
        """`POST .../actions/delete-permanent`: erase; the address can never be re-added."""
        with self._lock:
            member = self._existing(key)
            del self._members[member.id]
            self._forgotten.add(member.id)
            self._version += 1

    # -- what people do on Mailchimp's side (sent to us as webhooks) ----------------

    def webhook_targets(self, event: AudienceEvent) -> list[str]:
        return self.webhooks.targets(event)

    def _live(self, email: str) -> Member:
        member = self._members.get(subscriber_hash(email))
        if member is None or member.status == "archived":
            raise LookupError("no such member")
        return member

    def _event(
        self, kind: str, member: Member | None, source: str, **extra: str | None
    ) -> AudienceEvent:
        snapshot = copy.deepcopy(member) if member else None
        return AudienceEvent(kind, source, self._clock(), self.list_id, snapshot, extra)

    def user_subscribes(
        self,
        email: str,
        *,
        merges: Mapping[str, str] | None = None,
        ip_opt: str = "",
        source: str = "user",
    ) -> list[AudienceEvent]:
        """A signup form, or the click on a double opt-in confirmation link."""
        with self._lock:
            key = subscriber_hash(email)
            member = self._members.get(key)
            if member is None:
                self._check_new_address(email)
                member = Member(email, "", new_unique_email_id(), self._web_id(), self._last_stamp)
            member.merge_fields.update(merges or {})
            member.ip_opt = ip_opt or member.ip_opt
            member.timestamp_opt = iso(self._clock())
            self._set_status(key, member, "subscribed", reason="")
            member.needs_confirmation = False
            self._touch(key, member)
            return [self._event("subscribe", member, source)]

    def user_unsubscribes(
        self,
        email: str,
        *,
        reason: str = "manual",
        campaign_id: str | None = None,
        action: str | None = "unsub",
        source: str = "user",
    ) -> list[AudienceEvent]:
        """An unsubscribe link (`reason=manual`) or a spam complaint (`reason=abuse`)."""
        with self._lock:
            member = self._live(email)
            text = "Abuse complaint" if reason == "abuse" else "N/A (Unsubscribe link)"
            self._set_status(member.id, member, "unsubscribed", reason=text)
            if action == "delete":
                member.status_before_archive, member.status = "unsubscribed", "archived"
            self._touch(member.id, member)
            return [
                self._event(
                    "unsubscribe",
                    member,
                    source,
                    action=action,
                    reason=reason,
                    campaign_id=campaign_id,
                )
            ]

    def user_cleaned(
        self,
        email: str,
        *,
        reason: str = "hard",
        campaign_id: str | None = None,
        source: str = "user",
    ) -> list[AudienceEvent]:
        """A hard bounce or an abuse report cleans the address."""
        with self._lock:
            member = self._live(email)
            self._set_status(member.id, member, "cleaned", reason="")
            self._touch(member.id, member)
            return [self._event("cleaned", member, source, reason=reason, campaign_id=campaign_id)]

    def user_updates_profile(
        self, email: str, merges: Mapping[str, str], *, source: str = "user"
    ) -> list[AudienceEvent]:
        with self._lock:
            member = self._live(email)
            member.merge_fields.update(merges)
            self._touch(member.id, member)
            return [self._event("profile", member, source)]

    def user_changes_email(
        self, old: str, new: str, *, source: str = "user"
    ) -> list[AudienceEvent]:
        """Mailchimp sends `upemail` and, with it, a `profile` event."""
        with self._lock:
            member = self._live(old)
            old_address = member.email_address
            self._rename(member, new)
            upemail = self._event(
                "upemail",
                member,
                source,
                old_email=old_address,
                new_email=new,
                new_id=member.unique_email_id,
            )
            return [upemail, self._event("profile", member, source)]

    def campaign_sent(
        self, campaign_id: str, *, subject: str = "", status: str = "sent", reason: str = ""
    ) -> list[AudienceEvent]:
        with self._lock:
            return [
                self._event(
                    "campaign",
                    None,
                    "user",
                    id=campaign_id,
                    subject=subject,
                    status=status,
                    reason=reason,
                )
            ]

    # -- test accessors and seeding -------------------------------------------------

    def member(self, email_or_hash: str) -> JSON | None:
        """The member as the API would show it, by address or hash; None if absent."""
        key = email_or_hash.lower() if "@" not in email_or_hash else subscriber_hash(email_or_hash)
        with self._lock:
            found = self._members.get(key)
            return self._render(found) if found else None

    def members(self, status: str | None = None) -> list[JSON]:
        with self._lock:
            return [self._render(m) for m in self._members.values() if status in (None, m.status)]

    def member_count(self, status: str | None = None) -> int:
        with self._lock:
            return sum(1 for m in self._members.values() if status in (None, m.status))

    def confirmation_mails_sent(self, email: str) -> int:
        """How many double opt-in confirmation mails Mailchimp sent to this address."""
        with self._lock:
            return self._confirmations.get(subscriber_hash(email), 0)

    def is_forgotten(self, email: str) -> bool:
        with self._lock:
            return subscriber_hash(email) in self._forgotten

    def seed(
        self,
        email: str,
        status: str = "subscribed",
        *,
        merge_fields: Mapping[str, str] | None = None,
        tags: Iterable[str] = (),
        unique_email_id: str | None = None,
        web_id: int | None = None,
        **details: str,
    ) -> JSON:
        """Put a member in place with no rules applied (existing audience data)."""
        with self._lock:
            key = subscriber_hash(email)
            member = Member(
                email,
                status,
                unique_email_id or new_unique_email_id(),
                web_id if web_id is not None else self._web_id(),
                self._last_stamp,
                merge_fields=dict(merge_fields or {}),
                tags=list(tags),
            )
            for name, value in details.items():
                setattr(member, name, value)
            member.needs_confirmation = status in COMPLIANCE_STATES
            self._touch(key, member)
            return self._render(member)


class _ContactExistsError(Exception):
    def __init__(self, email: str) -> None:
        super().__init__("contact exists")
        self.email = email


def _batch_error(
    email: Any, error: str, code: str, field_name: str = "", field_message: str = ""
) -> JSON:
    return {
        "email_address": email if isinstance(email, str) else "",
        "error": error,
        "error_code": code,
        "field": field_name,
        "field_message": field_message,
    }
