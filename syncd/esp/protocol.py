"""What syncd needs from an email service provider. Mailchimp implements it in
`syncd.esp.mailchimp`; a second ESP would be one more module.

The write side (pushing member changes) is declared here too by the sync engine."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from syncd.esp.errors import EspError
from syncd.frozen import quick_init

# Member statuses under which Mailchimp mails the person (or is about to: `pending`
# sends the confirmation mail).
LIVE_STATUSES = frozenset({"subscribed", "pending"})


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
    # GDPR fields (permission id -> enabled) and groups (interest id -> on), when read.
    marketing_permissions: Mapping[str, bool] = field(default_factory=dict)
    interests: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class AudienceFields:
    """An audience's GDPR fields and groups as the ESP names them (read at sync start).

    `gdpr`: the audience has marketing permissions switched on; `permissions` (text ->
    id) is empty while it has no member to read them from (docs/mailchimp.md section 6).
    `interests`: (category title, interest name) -> interest id."""

    gdpr: bool = False
    permissions: Mapping[str, str] = field(default_factory=dict)
    interests: Mapping[tuple[str, str], str] = field(default_factory=dict)


class FieldsReader(Protocol):
    def read_audience_fields(self) -> AudienceFields:
        """The audience's marketing permissions and interests, by name."""


@dataclass(frozen=True)
class WebhookConfig:
    id: str
    url: str
    events: Mapping[str, bool]
    sources: Mapping[str, bool]


class EspReader(Protocol):
    def ping(self) -> None:
        """Raise EspConfigurationError or EspTransientError if the ESP is not usable."""

    def close(self) -> None:
        """Release the connections; whoever built the client closes it."""

    def iter_changed_members(
        self, *, status: str | None, since: datetime, page_size: int = 1000
    ) -> Iterator[Sequence[RemoteMember]]:
        """Pages of members with `status` (None: any but archived) whose last_changed >=
        since, oldest first."""

    def iter_audience(self, *, page_size: int = 1000) -> Iterator[Sequence[RemoteMember]]:
        """Pages of every member of the audience, archived included (the audience pull)."""

    def get_member(self, email: str) -> RemoteMember | None:
        """The member under this address, any status; None if Mailchimp has none."""


class AudienceReader(Protocol):
    def iter_audience(self, *, page_size: int = 1000) -> Iterator[Sequence[RemoteMember]]:
        """Pages of every member of the audience, archived included."""

    def close(self) -> None: ...


class EspWebhooks(Protocol):
    def list_webhooks(self) -> list[WebhookConfig]: ...

    def create_webhook(self, url: str, events: Mapping[str, bool],
                       sources: Mapping[str, bool]) -> WebhookConfig: ...

    def update_webhook(self, webhook_id: str, url: str, events: Mapping[str, bool],
                       sources: Mapping[str, bool]) -> WebhookConfig: ...


# -- the write side (the sync engine's push) -------------------------------------------


@quick_init
@dataclass(frozen=True)
class MemberData:
    """What syncd sends about one member. Never a status: the status is a separate,
    explicit argument of each write, so no update can re-subscribe by accident (I2)."""

    email: str
    merge_fields: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    # Proof of opt-in (Art. 7(1)): the given consent and its confirmation.
    ip_signup: str | None = None
    timestamp_signup: str | None = None
    ip_opt: str | None = None
    timestamp_opt: str | None = None
    # GDPR fields to set (permission id -> enabled) and groups (interest id -> on); only
    # the ones syncd manages, so that the others stay as they are.
    marketing_permissions: Mapping[str, bool] = field(default_factory=dict)
    interests: Mapping[str, bool] = field(default_factory=dict)


@quick_init
@dataclass(frozen=True)
class NewMember:
    """A member to add; `status` is `subscribed` or `pending` (Mailchimp mails a
    confirmation for `pending`)."""

    data: MemberData
    status: str


@quick_init
@dataclass(frozen=True)
class MemberResult:
    """The ESP's answer for one member.

    outcome: `created` (added now), `exists` (add refused: already a member, left
    untouched), `written` (updated), `missing` (no such member), `failed` (refused;
    `error` says whether permanently or for now)."""

    email: str
    outcome: str
    status: str | None = None
    error: EspError | None = None
    # For `exists`: set when an earlier attempt of the same call failed in a way that may
    # have landed (timeout, reset, 5xx): the member may be our own add from that attempt.
    # The moment that attempt was sent.
    uncertain_since: datetime | None = None


class EspWriter(Protocol):
    """Member writes. Run-level problems raise EspConfigurationError; transient ones are
    retried inside and raise EspTransientError only once retries are exhausted."""

    def ping(self) -> None: ...

    def close(self) -> None: ...

    @property
    def write_calls(self) -> int:
        """Write calls sent so far, each retry counted: a run reports the difference."""

    def push_batch(self, members: Sequence[NewMember]) -> list[MemberResult]:
        """Add up to 500 members in ONE call without touching existing ones
        (`update_existing: false`): an existing member comes back as `exists`."""

    def upsert_member(self, data: MemberData, *, status_if_new: str,
                      status: str | None = None) -> MemberResult:
        """PUT: update data; `status_if_new` applies only if the address is new;
        `status` only when the intent is exactly that change (pending re-consent)."""

    def update_member(self, data: MemberData, *, status: str | None = None) -> MemberResult:
        """PATCH a member believed to exist: `missing` if absent, never creates one;
        `status` only for a re-consent (`pending`)."""

    def rename_member(self, old_email: str, data: MemberData) -> MemberResult:
        """PATCH the member keyed by `old_email` to `data.email` and its data, no status;
        `missing` if there is no such member."""

    def set_status(self, email: str, status: str, *,
                   marketing_permissions: Mapping[str, bool] | None = None) -> MemberResult:
        """PATCH the status of an existing member (unsubscribe), with the GDPR fields
        of the withdrawn purposes switched off; `missing` if absent."""

    def set_tags(self, email: str, *, active: Sequence[str], inactive: Sequence[str]) -> None:
        """Activate/deactivate tags with `is_syncing` (no tag automations fire)."""

    def get_member(self, email: str) -> RemoteMember | None: ...

    def iter_audience(self, *, page_size: int = 1000) -> Iterator[Sequence[RemoteMember]]:
        """The audience pull of the first sync (see AudienceReader)."""

    def archive_member(self, subscriber_hash: str) -> None: ...

    def delete_member_permanently(self, subscriber_hash: str) -> None:
        """Irreversible erasure at the ESP (Art. 17): only on an explicit request."""
