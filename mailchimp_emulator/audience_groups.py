"""The audience's groups and GDPR fields as the API serves them
(`/lists/{id}/interest-categories[/{id}/interests[/{id}]]`) and as tests set them up.

The state and the checks are audience_fields.py's; here they are taken under the
audience's lock, with the interests' subscriber counts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mailchimp_emulator.audience_core import AudienceCore
from mailchimp_emulator.members import JSON


class AudienceGroups(AudienceCore):
    """Interest categories and interests; marketing permissions switched on by a test."""

    def _interest_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for member in self._members.values():
            if member.status == "subscribed":
                for interest_id, on in member.interests.items():
                    counts[interest_id] = counts.get(interest_id, 0) + int(on)
        return counts

    # -- the API --------------------------------------------------------------------

    def interest_categories(self, *, count: int = 10, offset: int = 0) -> JSON:
        with self._lock:
            return self.fields.categories_doc(count, offset)

    def interest_category(self, category_id: str) -> JSON:
        with self._lock:
            return self.fields.category_doc(category_id)

    def add_interest_category_api(self, body: Mapping[str, Any]) -> JSON:
        with self._lock:
            return self.fields.add_category(body)

    def interests(self, category_id: str, *, count: int = 10, offset: int = 0) -> JSON:
        with self._lock:
            return self.fields.interests_doc(category_id, self._interest_counts(), count, offset)

    def interest(self, category_id: str, interest_id: str) -> JSON:
        with self._lock:
            return self.fields.interest_doc(category_id, interest_id, self._interest_counts())

    def add_interest_api(self, category_id: str, body: Mapping[str, Any]) -> JSON:
        with self._lock:
            return self.fields.add_interest(category_id, body)

    # -- set-up by tests and the demo (undone by reset) -----------------------------

    def add_marketing_permission(self, text: str) -> str:
        """Switch the audience's GDPR fields on with this permission; returns its id."""
        with self._lock:
            self._version += 1
            return self.fields.add_permission(text)

    def add_interest_category(self, title: str, names: Iterable[str]) -> dict[str, str]:
        """A checkbox category with these interests; returns name -> interest id."""
        with self._lock:
            category = self.fields.add_category({"title": title, "type": "checkboxes"})
            self._version += 1
            return {
                name: self.fields.add_interest(category["id"], {"name": name})["id"]
                for name in names
            }

    def permission_id(self, text: str) -> str:
        """The id of the permission with this text (LookupError if there is none)."""
        with self._lock:
            return self.fields.permission_id(text)

    def interest_id(self, name: str) -> str:
        """The id of the interest with this name (LookupError if there is none)."""
        with self._lock:
            return self.fields.interest_id(name)
