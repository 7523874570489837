"""The Marketing API's operations on an audience: list info, member reads and writes,
batch subscribe, the listing by last change, tags, archive and permanent delete."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mailchimp_emulator.audience_core import AudienceCore, ContactExistsError
from mailchimp_emulator.members import JSON, Member, iso, subscriber_hash
from mailchimp_emulator.problems import ApiProblem, field_error, invalid_resource


class AudienceApi(AudienceCore):
    """What `api.py` calls: one method per endpoint, returning JSON or raising ApiProblem."""

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
                "marketing_permissions": self.fields.gdpr,
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
            except ContactExistsError as exists:
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
                except ContactExistsError:
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
