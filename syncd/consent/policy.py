"""The consent policy: a pure function that answers, for one contact, purpose and moment,
"may we email this person for this purpose?", and says why in words.

Rules (docs/consent-rules.md): 1 one consent per purpose; 2 no pre-ticked boxes (refused at
import, never stored); 3 only a CONFIRMED (double opt-in) consent counts; 5/6 a withdrawal
or suppression newer than the latest confirmation blocks, and a confirmation newer than
a withdrawal is a re-consent, pushed as `pending`; 7 soft opt-in is not consent;
9 a hard bounce blocks until the address changes. Rules 7 and 11, the soft opt-in basis
of a target configured for it, are `decide_soft_opt_in`: paid purchases, never consent."""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TypeVar

from syncd.frozen import quick_init
from syncd.schema import ConsentAction

# What a ledger event records (given, confirmed, withdrawn, soft opt-in): one vocabulary,
# kept next to its table (consent_events.action).
Action = ConsentAction
_T = TypeVar("_T")


class Standing(StrEnum):
    CONFIRMED = "confirmed"
    RE_CONSENT = "re_consent"
    UNCONFIRMED = "unconfirmed"
    WITHDRAWN = "withdrawn"
    SUPPRESSED = "suppressed"
    UNDELIVERABLE = "undeliverable"
    SOFT_OPT_IN_ONLY = "soft_opt_in_only"
    OTHER_PURPOSE_ONLY = "other_purpose_only"
    NO_CONSENT = "no_consent"
    # The soft opt-in basis (decide_soft_opt_in); `decide` never answers these.
    CUSTOMER = "customer"
    NOT_CUSTOMER = "not_customer"
    LAPSED = "customer_lapsed"


# Enum members read once (each `Enum.MEMBER` read costs ~0.1 us on Python 3.11): read
# for every event of every contact the sync decides.
_CONFIRMED, _GIVEN, _WITHDRAWN = Action.CONFIRMED, Action.GIVEN, Action.WITHDRAWN
_STANDING_CONFIRMED = Standing.CONFIRMED


@quick_init
@dataclass(frozen=True)
class ConsentFact:
    purpose: str
    action: Action
    occurred_at: datetime
    source: str
    ip: str | None = None
    text_version: str | None = None


@quick_init
@dataclass(frozen=True)
class SuppressionFact:
    purpose: str  # a purpose or "*"
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class PurchaseFact:
    """A purchase as the CRM recorded it: the least the soft opt-in needs (rule 11)."""

    on: date
    category: str
    paid: bool


@quick_init
@dataclass(frozen=True)
class OptInProof:
    """Sent to Mailchimp as ip_signup/timestamp_signup and ip_opt/timestamp_opt."""

    signup_at: datetime | None
    signup_ip: str | None
    confirmed_at: datetime
    confirmed_ip: str | None


@quick_init
@dataclass(frozen=True)
class Decision:
    eligible: bool
    standing: Standing
    reason: str
    proof: OptInProof | None = None
    # Soft opt-in only: the categories of the paid purchases that admit the customer.
    categories: tuple[str, ...] = ()


def _day(moment: datetime) -> str:
    # strftime("%Y-%m-%d %H:%M UTC"), at half the cost (one reason per decision).
    return (f"{moment.year}-{moment.month:02d}-{moment.day:02d} "
            f"{moment.hour:02d}:{moment.minute:02d} UTC")


def decide(
    *,
    purpose: str,
    events: Iterable[ConsentFact],
    suppressions: Iterable[SuppressionFact] = (),
    is_customer: bool = False,
    undeliverable_since: datetime | None = None,
    now: datetime,
) -> Decision:
    """Eligible or not, and the reason. Events later than `now` are not yet known."""
    known, gifts, latest_confirmation, latest_withdrawal = _scan(purpose, events, now)
    latest_block = _latest_block(purpose, suppressions, now)
    blocked_at = latest_withdrawal.occurred_at if latest_withdrawal else None
    if latest_block is not None and (blocked_at is None or latest_block.created_at > blocked_at):
        blocked_at = latest_block.created_at

    # A block at the same moment as a confirmation wins: when in doubt, do not mail.
    if blocked_at is not None and (
        latest_confirmation is None or latest_confirmation.occurred_at <= blocked_at
    ):
        if latest_block is not None and latest_block.created_at == blocked_at:
            return Decision(False, Standing.SUPPRESSED,
                            f"suppressed since {_day(blocked_at)} ({latest_block.reason}); "
                            "only a new confirmed consent brings them back")
        assert latest_withdrawal is not None
        return Decision(False, Standing.WITHDRAWN,
                        f"{purpose} consent withdrawn {_day(blocked_at)} via "
                        f"{latest_withdrawal.source}")

    if latest_confirmation is None:
        return _without_confirmation(purpose, known, gifts, is_customer)
    return _on_confirmation(purpose, latest_confirmation, gifts, undeliverable_since,
                            blocked_at)

def _on_confirmation(purpose: str, latest_confirmation: ConsentFact,
                     gifts: list[ConsentFact], undeliverable_since: datetime | None,
                     blocked_at: datetime | None) -> Decision:
    """The decision for a purpose whose latest confirmation is newer than every block."""
    signup: ConsentFact | None = None  # the latest gift up to the confirmation
    for gift in gifts:
        if gift.occurred_at <= latest_confirmation.occurred_at and (
                signup is None or gift.occurred_at > signup.occurred_at):
            signup = gift
    if signup is None:
        # Rule 10: the click confirms THIS purpose's sign-up; with none at or before it
        # (refused as pre-ticked, or never made) there is nothing it could confirm.
        return Decision(False, Standing.UNCONFIRMED,
                        f"{purpose} confirmation {_day(latest_confirmation.occurred_at)} "
                        "confirms no sign-up of that purpose at or before it: no consent")

    if undeliverable_since is not None:
        return _undeliverable(undeliverable_since)

    proof = OptInProof(signup_at=signup.occurred_at, signup_ip=signup.ip,
                       confirmed_at=latest_confirmation.occurred_at,
                       confirmed_ip=latest_confirmation.ip)
    version = (f", text {latest_confirmation.text_version}"
               if latest_confirmation.text_version else "")
    if blocked_at is not None:
        return Decision(True, Standing.RE_CONSENT,
                        f"re-consent: {purpose} consent confirmed "
                        f"{_day(latest_confirmation.occurred_at)} after a withdrawal or "
                        f"suppression on {_day(blocked_at)}; goes to the ESP as pending",
                        proof)
    return Decision(True, _STANDING_CONFIRMED,
                    f"{purpose} consent confirmed {_day(latest_confirmation.occurred_at)} via "
                    f"{latest_confirmation.source}{version}", proof)


def _scan(purpose: str, events: Iterable[ConsentFact], now: datetime
          ) -> tuple[list[ConsentFact], list[ConsentFact], ConsentFact | None,
                     ConsentFact | None]:
    """(known events, gifts of the purpose, latest confirmation, latest withdrawal) in one
    pass: the sync decides for every changed contact. Of equal moments the first in the
    given order counts as the latest, as max() picks it."""
    known: list[ConsentFact] = []
    gifts: list[ConsentFact] = []
    confirmation: ConsentFact | None = None
    withdrawal: ConsentFact | None = None
    for event in events:
        moment = event.occurred_at
        if not moment <= now:
            continue
        known.append(event)
        if event.purpose != purpose:
            continue
        action = event.action
        if action is _CONFIRMED:
            if confirmation is None or moment > confirmation.occurred_at:
                confirmation = event
        elif action is _GIVEN:
            gifts.append(event)
        elif action is _WITHDRAWN and (
                withdrawal is None or moment > withdrawal.occurred_at):
            withdrawal = event
    return known, gifts, confirmation, withdrawal


def _latest(items: Iterable[_T], moment: Callable[[_T], datetime], now: datetime) -> _T | None:
    """The item with the latest moment up to `now`; of equal moments the first, as max()
    picks it."""
    latest: _T | None = None
    for item in items:
        at = moment(item)
        if at <= now and (latest is None or at > moment(latest)):
            latest = item
    return latest


def _latest_block(purpose: str, suppressions: Iterable[SuppressionFact],
                  now: datetime) -> SuppressionFact | None:
    """The newest suppression of the purpose or of every purpose ("*"); most have none."""
    return None if not suppressions else _latest(
        (b for b in suppressions if b.purpose in (purpose, "*")), lambda b: b.created_at, now)


def _undeliverable(since: datetime) -> Decision:
    """Rule 9: a hard bounce blocks until the address changes, whatever the basis."""
    return Decision(False, Standing.UNDELIVERABLE,
                    f"address bounced (hard) {_day(since)}; "
                    "not pushed until the address changes")


def _without_confirmation(
    purpose: str, known: list[ConsentFact], gifts: list[ConsentFact], is_customer: bool
) -> Decision:
    if gifts:
        latest = max(gifts, key=lambda e: e.occurred_at)
        return Decision(False, Standing.UNCONFIRMED,
                        f"{purpose} consent given {_day(latest.occurred_at)} but never "
                        "confirmed (double opt-in missing)")
    soft = any(e.action is Action.SOFT_OPT_IN for e in known)
    if is_customer or soft:
        return Decision(False, Standing.SOFT_OPT_IN_ONLY,
                        f"existing customer (soft opt-in): not {purpose} consent")
    others = sorted({e.purpose for e in known
                     if e.purpose != purpose and e.action in (Action.GIVEN, Action.CONFIRMED)})
    if others:
        return Decision(False, Standing.OTHER_PURPOSE_ONLY,
                        f"no {purpose} consent; consent only for: {', '.join(others)}")
    return Decision(False, Standing.NO_CONSENT, f"no {purpose} consent")


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier (the month's last day if shorter)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))


def decide_soft_opt_in(
    *,
    purpose: str,
    purchases: Iterable[PurchaseFact],
    events: Iterable[ConsentFact] = (),
    suppressions: Iterable[SuppressionFact] = (),
    undeliverable_since: datetime | None = None,
    now: datetime,
    months: int,
) -> Decision:
    """Rule 7/11: offers of `purpose` to an existing customer. Eligible only with a PAID
    purchase within `months` before `now`, no objection to the purpose ever recorded (an
    objection is a `withdrawn` event of it: at the purchase or later, and a later
    purchase does not undo it), no suppression of it or of every purpose, and a
    deliverable address. Consent events of any purpose admit nobody here."""
    objection = _latest((e for e in events
                         if e.purpose == purpose and e.action is Action.WITHDRAWN),
                        lambda e: e.occurred_at, now)
    block = _latest_block(purpose, suppressions, now)
    if block is not None and (objection is None or block.created_at > objection.occurred_at):
        return Decision(False, Standing.SUPPRESSED,
                        f"suppressed since {_day(block.created_at)} ({block.reason}): "
                        "no offers on the soft opt-in basis")
    if objection is not None:
        return Decision(False, Standing.WITHDRAWN,
                        f"objected on {_day(objection.occurred_at)} via {objection.source}: "
                        f"no {purpose} on the soft opt-in basis, whatever they buy later")
    today = now.date()
    paid = sorted((p for p in purchases if p.paid and p.on <= today), key=lambda p: p.on)
    if not paid:
        return Decision(False, Standing.NOT_CUSTOMER,
                        "not a customer: no paid purchase (a quote or a free product "
                        "does not make a customer)")
    cutoff = months_before(today, months)
    recent = [p for p in paid if p.on >= cutoff]
    if not recent:
        return Decision(False, Standing.LAPSED,
                        f"last paid purchase {paid[-1].on.isoformat()} older than "
                        f"{months} months")
    if undeliverable_since is not None:
        return _undeliverable(undeliverable_since)
    categories = tuple(sorted({p.category for p in recent}))
    return Decision(True, Standing.CUSTOMER,
                    f"soft opt-in: customer since {paid[0].on.isoformat()}, categories "
                    f"{', '.join(categories)}", categories=categories)
