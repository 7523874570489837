"""One audience event being applied: what every effect reads of it (the event, settings,
the ESP's moment), its outcome, and the error of an event that can never apply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from syncd.config import Settings
from syncd.config.targets import TargetSettings
from syncd.errors import SyncdError
from syncd.keys import Keyring
from syncd.schema import InboxStatus, LedgerChannel
from syncd.store import push_state
from syncd.webhooks.mailchimp_form import InboundEvent

ACTOR = "esp"
APPLIED, IGNORED = InboxStatus.APPLIED, InboxStatus.IGNORED
# A webhook and the reconciliation pull see the same unsubscribe at nearly the same
# moment (fired_at vs last_changed); within this window, with no confirmation between,
# they are one withdrawal, not two.
SAME_WITHDRAWAL_WINDOW = timedelta(minutes=5)


class Unappliable(SyncdError):
    """This event can never be applied as it is (no address, conflicting address): it is
    kept and parked at once for a person to look at. The message names no address."""


@dataclass(frozen=True)
class Outcome:
    status: InboxStatus  # applied | ignored
    note: str
    contact_id: int | None = None


@dataclass(frozen=True)
class Job:
    session: Session
    event: InboundEvent
    settings: Settings
    keyring: Keyring
    event_key: str
    channel: LedgerChannel
    moment: datetime  # when the ESP saw it (fired_at), never later than now
    now: datetime
    # The sync target of the event's audience (routed by its list_id); None: no audience
    # is configured at all (the purpose is then sync_purpose, as before targets).
    target: TargetSettings | None = None

    @property
    def purpose(self) -> str:
        """The purpose a subscribe confirms: the target's first. Any of the target's
        purposes admits with a CONFIRMED consent (syncd.sync.plan_member), but syncd asks
        Mailchimp for `pending` on an unconfirmed sign-up of the first one only, so a
        confirmation click can only be that one's."""
        return self.target.purposes[0] if self.target else self.settings.sync_purpose

    @property
    def purposes(self) -> tuple[str, ...]:
        """Every purpose an unsubscribe in this audience withdraws: the target's, only."""
        return self.target.purposes if self.target else (self.settings.sync_purpose,)

    @property
    def merge_fields(self) -> dict[str, str]:
        """CRM field -> Mailchimp merge tag, of this audience's target."""
        if self.target is not None:
            return dict(self.target.merge_fields)
        return dict(self.settings.mailchimp_merge_fields)

    @property
    def audience(self) -> str | None:
        return self.event.list_id or (self.target.audience_id if self.target else None)

    def learn_status(self, contact_id: int, status: str) -> None:
        """What Mailchimp now has for the member (it reported it): the planner decides
        a later re-consent against this state (`pending`), whatever order the events
        came in; and the reconciliation sees no second move for the same unsubscribe."""
        if self.audience:
            push_state.learn_status(self.session, contact_id, self.audience, status,
                                    self.moment)
