"""What syncd needs from an email service provider. Mailchimp implements it in
`syncd.esp.mailchimp`; a second ESP would be one more module.

The write side (pushing member changes) is declared here too by the sync engine."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class RemoteMember:
    """A member as the ESP reports it (reconciliation reads these)."""

    email: str
    status: str  # subscribed | unsubscribed | cleaned | pending | transactional | archived
    last_changed: datetime
    unsubscribe_reason: str | None = None
    merge_fields: Mapping[str, str] = field(default_factory=dict)
    ip_opt: str | None = None
    timestamp_opt: datetime | None = None


@dataclass(frozen=True)
class WebhookConfig:
    id: str
    url: str
    events: Mapping[str, bool]
    sources: Mapping[str, bool]


class EspReader(Protocol):
    def ping(self) -> None:
        """Raise EspConfigurationError or EspTransientError if the ESP is not usable."""

    def iter_changed_members(
        self, *, status: str, since: datetime, page_size: int = 1000
    ) -> Iterator[Sequence[RemoteMember]]:
        """Pages of members with `status` whose last_changed >= since, oldest first."""


class EspWebhooks(Protocol):
    def list_webhooks(self) -> list[WebhookConfig]: ...

    def create_webhook(self, url: str, events: Mapping[str, bool],
                       sources: Mapping[str, bool]) -> WebhookConfig: ...

    def update_webhook(self, webhook_id: str, url: str, events: Mapping[str, bool],
                       sources: Mapping[str, bool]) -> WebhookConfig: ...
