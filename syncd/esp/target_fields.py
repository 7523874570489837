"""A target's groups and GDPR fields resolved to the audience's ids at the start of a run:
internal list -> interest id, marketing permission id -> purpose.

A group or a permission text the settings name and the audience lacks is a ConfigError
naming it (never a silent skip). An audience without GDPR fields gets none sent, whatever
is mapped. One with GDPR fields but no member yet shows no permission ids (Mailchimp lists
them only on members, docs/mailchimp.md section 6): a ConfigError too, since members
pushed without them would have every permission off for good."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from syncd.config import Settings
from syncd.config.targets import TargetSettings
from syncd.errors import ConfigError
from syncd.esp.protocol import AudienceFields, FieldsReader


@dataclass(frozen=True)
class TargetFields:
    interests: Mapping[str, str] = field(default_factory=dict)  # internal list -> id
    permissions: Mapping[str, str] = field(default_factory=dict)  # permission id -> purpose

    @property
    def interest_lists(self) -> Mapping[str, str]:
        """Interest id -> internal list (the way back, for reconciliation)."""
        return {interest: name for name, interest in self.interests.items()}


def resolve(target: TargetSettings, fields: AudienceFields) -> TargetFields:
    """The ids of `target`'s mapped groups and permissions in this audience."""
    interests: dict[str, str] = {}
    missing = []
    for list_name in sorted(target.interests):
        group = target.interest_of(list_name)
        assert group is not None
        found = fields.interests.get(group)
        if found is None:
            missing.append(f"{list_name} -> \"{group[0]}/{group[1]}\"")
        else:
            interests[list_name] = found
    if missing:
        raise ConfigError(f"target {target.name}: Mailchimp audience {target.audience_id} "
                          f"has no group {', '.join(missing)} (interests setting; groups "
                          "are named \"Category/Interest name\" as in Mailchimp)")
    permissions: dict[str, str] = {}
    if target.marketing_permissions and fields.gdpr and not fields.permissions:
        raise ConfigError(
            f"target {target.name}: Mailchimp audience {target.audience_id} has GDPR fields "
            "but no member yet to read their ids from (Mailchimp shows them only on "
            "members); add one member in Mailchimp, then sync")
    if target.marketing_permissions and fields.gdpr:
        lacking = sorted(set(target.marketing_permissions) - set(fields.permissions))
        if lacking:
            raise ConfigError(
                f"target {target.name}: Mailchimp audience {target.audience_id} has no "
                f"marketing permission {', '.join(repr(t) for t in lacking)} "
                f"(it has {', '.join(repr(t) for t in sorted(fields.permissions))}); "
                "check the marketing_permissions setting")
        permissions = {fields.permissions[text]: purpose
                       for text, purpose in target.marketing_permissions.items()}
    return TargetFields(interests=interests, permissions=permissions)


def read(esp: FieldsReader, target: TargetSettings) -> TargetFields:
    """Read the audience's fields only when the target maps any (no call otherwise)."""
    if not (target.interests or target.marketing_permissions):
        return TargetFields()
    return resolve(target, esp.read_audience_fields())


def read_live(settings: Settings, target: TargetSettings) -> TargetFields:
    """`read` on a client of its own (a dry run, which otherwise calls nothing): GETs
    only, and none when the target maps nothing."""
    if not (target.interests or target.marketing_permissions):
        return TargetFields()
    from syncd.esp.mailchimp import mailchimp_client

    client = mailchimp_client(settings, target.audience_id)
    try:
        return read(client, target)
    finally:
        client.close()
