"""An audience's GDPR fields (marketing permissions) and groups (interest categories and
interests): their ids, the checks of a member write, and how members and webhooks show them.

Shapes and errors follow the Marketing API contract (docs/mailchimp.md section 6): the
list says only `marketing_permissions: true|false`; a member of a GDPR audience carries
every permission as `{marketing_permission_id, text, enabled}` (off unless set);
`interests` is `{interest_id: bool}` over every interest of the audience.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mailchimp_emulator.members import JSON
from mailchimp_emulator.problems import field_error, invalid_resource, not_found

CATEGORY_TYPES = ("checkboxes", "dropdown", "radio", "hidden")


def _id(*parts: str) -> str:
    """A stable 10-hex id, as Mailchimp's look (the same setup gives the same ids)."""
    return hashlib.md5("/".join(parts).encode(), usedforsecurity=False).hexdigest()[:10]


@dataclass
class InterestCategory:
    id: str
    title: str
    type: str
    display_order: int
    interests: dict[str, str] = field(default_factory=dict)  # id -> name, in order


@dataclass(frozen=True)
class FieldsSetup:
    """What an audience starts with: permission texts; category title -> interest names."""

    marketing_permissions: tuple[str, ...] = ()
    interest_categories: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def of(
        cls,
        marketing_permissions: Iterable[str] = (),
        interest_categories: Mapping[str, Iterable[str]] | None = None,
    ) -> FieldsSetup:
        return cls(
            tuple(marketing_permissions),
            tuple((t, tuple(n)) for t, n in (interest_categories or {}).items()),
        )


NO_FIELDS = FieldsSetup()


class AudienceFields:
    """The permissions and groups of one audience (callers hold the audience's lock)."""

    def __init__(self, list_id: str, setup: FieldsSetup = NO_FIELDS) -> None:
        self.list_id = list_id
        self.permissions: dict[str, str] = {}  # id -> text
        self.categories: dict[str, InterestCategory] = {}
        for text in setup.marketing_permissions:
            self.add_permission(text)
        for title, names in setup.interest_categories:
            category = self.add_category({"title": title, "type": "checkboxes"})
            for name in names:
                self.add_interest(category["id"], {"name": name})

    # -- setup ----------------------------------------------------------------------

    def add_permission(self, text: str) -> str:
        """Switch GDPR fields on (if not yet) with one more permission; returns its id."""
        permission_id = _id(self.list_id, "permission", text)
        self.permissions.setdefault(permission_id, text)
        return permission_id

    @property
    def gdpr(self) -> bool:
        return bool(self.permissions)

    def permission_id(self, id_or_text: str) -> str:
        if id_or_text in self.permissions:
            return id_or_text
        for permission_id, text in self.permissions.items():
            if text == id_or_text:
                return permission_id
        raise LookupError("no such marketing permission")

    def interest_id(self, id_or_name: str) -> str:
        for category in self.categories.values():
            for interest_id, name in category.interests.items():
                if id_or_name in (interest_id, name):
                    return interest_id
        raise LookupError("no such interest")

    # -- member writes --------------------------------------------------------------

    def check_write(self, body: Mapping[str, Any]) -> tuple[dict[str, bool], dict[str, bool]]:
        """The permissions and interests a member write sets (checked, nothing changed)."""
        permissions, interests = body.get("marketing_permissions"), body.get("interests")
        return (
            self.check_permissions(permissions) if permissions is not None else {},
            self.check_interests(interests) if interests is not None else {},
        )

    def check_permissions(self, value: Any) -> dict[str, bool]:
        """`marketing_permissions: [{marketing_permission_id, enabled}]` of a write."""
        if not isinstance(value, list):
            raise field_error("marketing_permissions", "Marketing permissions must be an array.")
        if value and not self.gdpr:
            raise invalid_resource("This list does not have marketing permissions enabled.")
        out: dict[str, bool] = {}
        for item in value:
            permission_id = item.get("marketing_permission_id") if isinstance(item, dict) else None
            if not isinstance(permission_id, str) or permission_id not in self.permissions:
                raise field_error(
                    "marketing_permissions",
                    f"Invalid marketing permission ID: {permission_id!r}.",
                )
            enabled = item.get("enabled")
            if not isinstance(enabled, bool):
                raise field_error("marketing_permissions.enabled", "Value must be a boolean.")
            out[permission_id] = enabled
        return out

    def check_interests(self, value: Any) -> dict[str, bool]:
        """`interests: {interest_id: bool}` of a write; an unknown id is refused."""
        if not isinstance(value, dict):
            raise field_error("interests", "Interests must be an object.")
        known = {i for c in self.categories.values() for i in c.interests}
        for interest_id, flag in value.items():
            if interest_id not in known:
                raise invalid_resource(f"Invalid interest ID: '{interest_id}'.")
            if not isinstance(flag, bool):
                raise field_error(f"interests.{interest_id}", "Value must be a boolean.")
        return dict(value)

    # -- rendering ------------------------------------------------------------------

    def render_member(self, doc: JSON, permissions: Mapping[str, bool],
                      interests: Mapping[str, bool]) -> None:
        doc["interests"] = {
            i: bool(interests.get(i, False)) for c in self.categories.values() for i in c.interests
        }
        if self.gdpr:
            doc["marketing_permissions"] = [
                {"marketing_permission_id": pid, "text": text,
                 "enabled": bool(permissions.get(pid, False))}
                for pid, text in self.permissions.items()
            ]

    def groupings(self, interests: Mapping[str, bool]) -> list[tuple[str, str, str]]:
        """Per category (id, title, chosen names comma-joined): the webhook's GROUPINGS."""
        return [
            (c.id, c.title, ",".join(n for i, n in c.interests.items() if interests.get(i)))
            for c in self.categories.values()
        ]

    # -- /interest-categories -------------------------------------------------------

    def _category(self, category_id: str) -> InterestCategory:
        category = self.categories.get(category_id)
        if category is None:
            raise not_found()
        return category

    def _category_doc(self, c: InterestCategory) -> JSON:
        return {"list_id": self.list_id, "id": c.id, "title": c.title,
                "display_order": c.display_order, "type": c.type}

    def _interest_doc(self, c: InterestCategory, interest_id: str, members: int) -> JSON:
        return {"category_id": c.id, "list_id": self.list_id, "id": interest_id,
                "name": c.interests[interest_id], "subscriber_count": str(members),
                "display_order": list(c.interests).index(interest_id)}

    def categories_doc(self, count: int, offset: int) -> JSON:
        docs = [self._category_doc(c) for c in self.categories.values()]
        return {"list_id": self.list_id, "categories": docs[offset: offset + count],
                "total_items": len(docs)}

    def category_doc(self, category_id: str) -> JSON:
        return self._category_doc(self._category(category_id))

    def add_category(self, body: Mapping[str, Any]) -> JSON:
        title, kind = body.get("title"), body.get("type")
        if not isinstance(title, str) or not title.strip():
            raise field_error("title", "This value should not be blank.")
        if kind not in CATEGORY_TYPES:
            raise field_error("type", f"Value must be one of: {', '.join(CATEGORY_TYPES)}")
        if any(c.title == title for c in self.categories.values()):
            raise invalid_resource(f'Cannot add "{title}" because it already exists on the list.')
        category = InterestCategory(_id(self.list_id, "category", title), title, str(kind),
                                    len(self.categories))
        self.categories[category.id] = category
        return self._category_doc(category)

    def interests_doc(self, category_id: str, counts: Mapping[str, int], count: int,
                      offset: int) -> JSON:
        c = self._category(category_id)
        docs = [self._interest_doc(c, i, counts.get(i, 0)) for i in c.interests]
        return {"interests": docs[offset: offset + count], "list_id": self.list_id,
                "category_id": c.id, "total_items": len(docs)}

    def interest_doc(self, category_id: str, interest_id: str, counts: Mapping[str, int]) -> JSON:
        c = self._category(category_id)
        if interest_id not in c.interests:
            raise not_found()
        return self._interest_doc(c, interest_id, counts.get(interest_id, 0))

    def add_interest(self, category_id: str, body: Mapping[str, Any]) -> JSON:
        c = self._category(category_id)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise field_error("name", "This value should not be blank.")
        if name in c.interests.values():
            raise invalid_resource(f'Cannot add "{name}" because it already exists on the list.')
        interest_id = _id(self.list_id, "interest", c.title, name)
        c.interests[interest_id] = name
        return self._interest_doc(c, interest_id, 0)
