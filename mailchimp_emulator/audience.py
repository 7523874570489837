"""The in-memory Mailchimp audience: `Audience`, the API's operations, what people do and
its groups, on one state (audience_core.py).

Pure Python, no HTTP: `api.py` calls one method here and renders the returned JSON or
the raised `ApiProblem`.
"""

from __future__ import annotations

from mailchimp_emulator.audience_api import AudienceApi
from mailchimp_emulator.audience_core import DEFAULT_LIST_ID
from mailchimp_emulator.audience_fields import FieldsSetup
from mailchimp_emulator.audience_groups import AudienceGroups
from mailchimp_emulator.audience_people import AudiencePeople
from mailchimp_emulator.members import AudienceEvent, AudienceRules, Clock, Member

__all__ = [
    "DEFAULT_LIST_ID",
    "Audience",
    "AudienceEvent",
    "AudienceRules",
    "Clock",
    "FieldsSetup",
    "Member",
]


class Audience(AudienceApi, AudiencePeople, AudienceGroups):
    """One Mailchimp audience (list): members, forgotten addresses, webhooks, groups and
    GDPR fields."""
