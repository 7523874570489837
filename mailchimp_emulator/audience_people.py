"""What people do on Mailchimp's side of an audience (each returns the events Mailchimp
sends as webhooks), and the accessors and seeding tests and the demo use."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypedDict, Unpack

from mailchimp_emulator.audience_core import AudienceCore
from mailchimp_emulator.members import (
    COMPLIANCE_STATES,
    JSON,
    AudienceEvent,
    Member,
    iso,
    new_unique_email_id,
    subscriber_hash,
)


class Unsubscribe(TypedDict, total=False):
    """How a person leaves, each part optional: `reason` manual (the link, the default)
    or abuse (a spam complaint), the `campaign_id` of the mail, `action` unsub (the
    default), delete (archived) or None, and the webhook's `source` (default user)."""

    reason: str
    campaign_id: str | None
    action: str | None
    source: str


class AudiencePeople(AudienceCore):
    """Sign-ups, unsubscribes, bounces, profile and address changes, campaigns; and the
    audience as a test reads or seeds it."""

    def webhook_targets(self, event: AudienceEvent) -> list[str]:
        return self.webhooks.targets(event)

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

    def user_unsubscribes(self, email: str, **how: Unpack[Unsubscribe]) -> list[AudienceEvent]:
        """An unsubscribe link (`reason=manual`) or a spam complaint (`reason=abuse`)."""
        reason = how.get("reason", "manual")
        action = how.get("action", "unsub")
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
                    how.get("source", "user"),
                    action=action,
                    reason=reason,
                    campaign_id=how.get("campaign_id"),
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
        self,
        email: str,
        merges: Mapping[str, str],
        *,
        interests: Mapping[str, bool] | None = None,
        marketing_permissions: Mapping[str, bool] | None = None,
        source: str = "user",
    ) -> list[AudienceEvent]:
        """The profile page: merge fields, groups (un)ticked, GDPR permissions switched,
        by id or by name/text. LookupError for an interest or permission not there."""
        with self._lock:
            member = self._live(email)
            ticked, permitted = self._resolved(interests, marketing_permissions)
            member.merge_fields.update(merges)
            member.interests.update(ticked)
            member.marketing_permissions.update(permitted)
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

    def _resolved(
        self, interests: Mapping[str, bool] | None, permissions: Mapping[str, bool] | None
    ) -> tuple[dict[str, bool], dict[str, bool]]:
        return (
            {self.fields.interest_id(k): bool(v) for k, v in (interests or {}).items()},
            {self.fields.permission_id(k): bool(v) for k, v in (permissions or {}).items()},
        )

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
        interests: Mapping[str, bool] | None = None,
        marketing_permissions: Mapping[str, bool] | None = None,
        **details: str,
    ) -> JSON:
        """Put a member in place with no rules applied (existing audience data)."""
        with self._lock:
            key = subscriber_hash(email)
            ticked, permitted = self._resolved(interests, marketing_permissions)
            member = Member(
                email,
                status,
                unique_email_id or new_unique_email_id(),
                web_id if web_id is not None else self._web_id(),
                self._last_stamp,
                merge_fields=dict(merge_fields or {}),
                tags=list(tags),
                marketing_permissions=permitted,
                interests=ticked,
            )
            for name, value in details.items():
                setattr(member, name, value)
            member.needs_confirmation = status in COMPLIANCE_STATES
            self._touch(key, member)
            return self._render(member)

