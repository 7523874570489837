"""The consent policy: a pure function that answers, for one contact, purpose and moment,
"may we email this person for this purpose?", and says why in words.

Rules (consent-rules.md): 1 one consent per purpose; 2 no pre-ticked boxes (refused at
import, never stored); 3 only a CONFIRMED (double opt-in) consent counts; 5/6 a withdrawal
or suppression newer than the latest confirmation blocks, and a confirmation newer than
a withdrawal is a re-consent, pushed as `pending`; 7 soft opt-in is not consent;
9 a hard bounce blocks until the address changes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Action(StrEnum):
    GIVEN = "given"
    CONFIRMED = "confirmed"
    WITHDRAWN = "withdrawn"
    # A record of the soft opt-in legal basis (existing customer); never consent.
    SOFT_OPT_IN = "soft_opt_in"


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


@dataclass(frozen=True)
class ConsentFact:
    purpose: str
    action: Action
    occurred_at: datetime
    source: str
    ip: str | None = None
    text_version: str | None = None


@dataclass(frozen=True)
class SuppressionFact:
    purpose: str  # a purpose or "*"
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class OptInProof:
    """Sent to Mailchimp as ip_signup/timestamp_signup and ip_opt/timestamp_opt."""

    signup_at: datetime | None
    signup_ip: str | None
    confirmed_at: datetime
    confirmed_ip: str | None


@dataclass(frozen=True)
class Decision:
    eligible: bool
    standing: Standing
    reason: str
    proof: OptInProof | None = None

    @property
    def re_consent(self) -> bool:
        return self.standing is Standing.RE_CONSENT


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


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
    known = [e for e in events if e.occurred_at <= now]
    mine = [e for e in known if e.purpose == purpose]
    confirmations = [e for e in mine if e.action is Action.CONFIRMED]
    gifts = [e for e in mine if e.action is Action.GIVEN]
    withdrawals = [e for e in mine if e.action is Action.WITHDRAWN]
    blocks = [s for s in suppressions if s.purpose in (purpose, "*") and s.created_at <= now]

    latest_withdrawal = max(withdrawals, key=lambda e: e.occurred_at, default=None)
    latest_block = max(blocks, key=lambda s: s.created_at, default=None)
    block_moments = [latest_withdrawal.occurred_at] if latest_withdrawal else []
    block_moments += [latest_block.created_at] if latest_block else []
    blocked_at = max(block_moments, default=None)
    latest_confirmation = max(confirmations, key=lambda e: e.occurred_at, default=None)

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

    if undeliverable_since is not None:
        return Decision(False, Standing.UNDELIVERABLE,
                        f"address bounced (hard) {_day(undeliverable_since)}; "
                        "not pushed until the address changes")

    signup = max((g for g in gifts if g.occurred_at <= latest_confirmation.occurred_at),
                 key=lambda e: e.occurred_at, default=None)
    proof = OptInProof(
        signup_at=signup.occurred_at if signup else None,
        signup_ip=signup.ip if signup else None,
        confirmed_at=latest_confirmation.occurred_at,
        confirmed_ip=latest_confirmation.ip,
    )
    version = (f", text {latest_confirmation.text_version}"
               if latest_confirmation.text_version else "")
    if blocked_at is not None:
        return Decision(True, Standing.RE_CONSENT,
                        f"re-consent: {purpose} consent confirmed "
                        f"{_day(latest_confirmation.occurred_at)} after a withdrawal or "
                        f"suppression on {_day(blocked_at)}; goes to the ESP as pending",
                        proof)
    return Decision(True, Standing.CONFIRMED,
                    f"{purpose} consent confirmed {_day(latest_confirmation.occurred_at)} via "
                    f"{latest_confirmation.source}{version}", proof)


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
