"""A local Mailchimp Marketing API v3 with Mailchimp's rules, for tests, demo and benchmarks.

Start one with `MailchimpEmulator().start()` (or as a context manager) and point a client
at `base_url`; see emulator_core.py for the Python control surface and control.py for
the `/_emulator/` HTTP one.
"""

from mailchimp_emulator.audience import DEFAULT_LIST_ID, Audience
from mailchimp_emulator.faults import FAULT_KINDS, RequestInfo, StatsSnapshot
from mailchimp_emulator.members import AudienceRules, subscriber_hash
from mailchimp_emulator.server import DEFAULT_API_KEY, MailchimpEmulator
from mailchimp_emulator.webhook_delivery import Delivery

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_LIST_ID",
    "FAULT_KINDS",
    "Audience",
    "AudienceRules",
    "Delivery",
    "MailchimpEmulator",
    "RequestInfo",
    "StatsSnapshot",
    "subscriber_hash",
]
