"""Sync targets: one Mailchimp audience each, the purposes (or the soft opt-in basis)
that admit a person to it, how internal lists and purposes map onto the audience's tags,
groups (interests) and GDPR fields (marketing permissions), and its own safety limit."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The name of the one target that the single-audience settings describe.
DEFAULT_TARGET = "default"
# A target setting -> the single-audience setting it comes from when there are no
# [[targets]] (Settings.sync_targets), for messages that name the one to change.
SINGLE_AUDIENCE_NAMES = {
    "audience_id": "mailchimp_audience_id", "purposes": "sync_purpose",
    "merge_fields": "mailchimp_merge_fields", "sync_tags": "mailchimp_sync_tags",
    "max_unsubscribe_share": "sync_max_unsubscribe_share",
    "unsubscribe_floor": "sync_unsubscribe_floor", "interval_minutes": "sync_interval_minutes",
}

_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"
_PURPOSE = r"^[a-z0-9][a-z0-9_-]*$"


class TargetSettings(BaseModel):
    """One audience and who reaches it (docs/consent-rules.md, rules 2 and 7).

    `basis = "consent"`: a confirmed (double opt-in) consent for one of `purposes`.
    `basis = "soft_opt_in"`: a paid purchase within `soft_opt_in_months` and no objection
    to `purposes` (ePrivacy Art. 13(2), Telecommunicatiewet 11.7); never a consent-only
    audience, and a consent never admits anyone to it by accident."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_NAME)
    audience_id: str = Field(min_length=1, max_length=100)
    purposes: tuple[str, ...] = Field(min_length=1)
    basis: Literal["consent", "soft_opt_in"] = "consent"
    # Soft opt-in: how long after the last paid purchase a customer may get offers.
    soft_opt_in_months: int = Field(default=24, ge=1, le=120)
    # Soft opt-in: tag members with the product categories they bought (similar products).
    category_tags: bool = True
    # CRM field -> Mailchimp merge tag (first_name, last_name or an imported attribute).
    merge_fields: dict[str, str] = Field(
        default_factory=lambda: {"first_name": "FNAME", "last_name": "LNAME"})
    # Mirror the internal lists of this target's purposes as Mailchimp tags.
    sync_tags: bool = True
    # Internal list -> Mailchimp group, "Category/Interest name" (resolved to ids at start;
    # a group Mailchimp does not have is a configuration error naming it).
    interests: dict[str, str] = Field(default_factory=dict)
    # Mailchimp marketing permission text (the GDPR field, e.g. "Email") -> purpose.
    # Permissions mapped to no purpose are left as they are.
    marketing_permissions: dict[str, str] = Field(default_factory=dict)
    # The safety limit: unsubscribes above this share of the members known live (and
    # above the floor) are held until `--force`.
    max_unsubscribe_share: float = Field(default=0.10, ge=0, le=1)
    unsubscribe_floor: int = Field(default=50, ge=0)
    interval_minutes: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> TargetSettings:
        for purpose in (*self.purposes, *self.marketing_permissions.values()):
            if not re.match(_PURPOSE, purpose):
                raise ValueError(f"target {self.name}: {purpose!r} is not a purpose name")
        unknown = sorted(set(self.marketing_permissions.values()) - set(self.purposes))
        if unknown:
            raise ValueError(f"target {self.name}: marketing_permissions map to purposes "
                             f"the target does not send: {', '.join(unknown)}")
        for list_name, group in self.interests.items():
            category, sep, interest = group.partition("/")
            if not sep or not category.strip() or not interest.strip():
                raise ValueError(f"target {self.name}: interests.{list_name} must be "
                                 f"\"Category/Interest name\", not {group!r}")
        if self.basis == "soft_opt_in" and len(self.purposes) != 1:
            raise ValueError(f"target {self.name}: a soft opt-in target names exactly one "
                             "purpose (the one a customer may object to)")
        return self

    def interest_of(self, list_name: str) -> tuple[str, str] | None:
        """(category, interest name) an internal list maps to, or None."""
        group = self.interests.get(list_name)
        if group is None:
            return None
        category, _, interest = group.partition("/")
        return category.strip(), interest.strip()
