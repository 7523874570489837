"""The consent rules (consent-rules.md) as a decision table over the pure policy.

Each row reads like the rule it proves: who the person is (their ledger, suppressions,
customer and bounce state) and what the policy must answer for the newsletter."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from syncd.consent.policy import (
    Action,
    ConsentFact,
    Decision,
    Standing,
    SuppressionFact,
    decide,
)
from tests.builders import at

NOW = at(100)
G, C, W, S = Action.GIVEN, Action.CONFIRMED, Action.WITHDRAWN, Action.SOFT_OPT_IN


@dataclass(frozen=True)
class Case:
    events: list[tuple[str, Action, float]] = field(default_factory=list)
    suppressions: list[tuple[str, str, float]] = field(default_factory=list)
    customer: bool = False
    bounced_on: float | None = None
    purpose: str = "newsletter"
    eligible: bool = False
    standing: Standing = Standing.NO_CONSENT
    reason_has: str = ""


def _decide(case: Case, now: datetime = NOW) -> Decision:
    return decide(
        purpose=case.purpose,
        events=[ConsentFact(purpose=p, action=a, occurred_at=at(d), source="web_form",
                            ip="192.0.2.1", text_version="v3") for p, a, d in case.events],
        suppressions=[SuppressionFact(purpose=p, reason=r, created_at=at(d))
                      for p, r, d in case.suppressions],
        is_customer=case.customer,
        undeliverable_since=None if case.bounced_on is None else at(case.bounced_on),
        now=now,
    )


RULES = {
    "rule 1: e-book download is not newsletter consent": Case(
        events=[("ebook", G, 1), ("ebook", C, 1.1)],
        standing=Standing.OTHER_PURPOSE_ONLY, reason_has="consent only for: ebook"),
    "rule 1: a confirmed newsletter consent does not cover offers": Case(
        events=[("newsletter", G, 1), ("newsletter", C, 1.1)], purpose="offers",
        standing=Standing.OTHER_PURPOSE_ONLY, reason_has="no offers consent"),
    "rule 1: newsletter-and-e-book form confirmed is newsletter consent": Case(
        events=[("newsletter", G, 1), ("ebook", G, 1), ("newsletter", C, 1.1)],
        eligible=True, standing=Standing.CONFIRMED, reason_has="confirmed"),
    "rule 3: confirmed double opt-in is eligible": Case(
        events=[("newsletter", G, 1), ("newsletter", C, 1.1)],
        eligible=True, standing=Standing.CONFIRMED,
        reason_has="newsletter consent confirmed 2026-03-02"),
    "rule 3: unconfirmed sign-up is not eligible": Case(
        events=[("newsletter", G, 1)],
        standing=Standing.UNCONFIRMED, reason_has="never confirmed"),
    "rule 10: a confirmation without a recorded sign-up is no consent": Case(
        events=[("newsletter", C, 1)], standing=Standing.UNCONFIRMED,
        reason_has="confirms no sign-up"),
    "rule 10: a confirmation before its sign-up confirms nothing": Case(
        events=[("newsletter", C, 1), ("newsletter", G, 2)], standing=Standing.UNCONFIRMED,
        reason_has="confirms no sign-up"),
    "rule 10: a confirmation of another purpose's sign-up confirms nothing": Case(
        events=[("ebook", G, 1), ("newsletter", C, 1.1)], standing=Standing.UNCONFIRMED,
        reason_has="confirms no sign-up"),
    "rule 3: nobody without any consent": Case(
        standing=Standing.NO_CONSENT, reason_has="no newsletter consent"),
    "rule 5: withdrawal after confirmation blocks": Case(
        events=[("newsletter", G, 1), ("newsletter", C, 1.1), ("newsletter", W, 5)],
        standing=Standing.WITHDRAWN, reason_has="withdrawn"),
    "rule 5: withdrawal of another purpose does not block the newsletter": Case(
        events=[("newsletter", G, 0.5), ("newsletter", C, 1), ("offers", W, 5)],
        eligible=True, standing=Standing.CONFIRMED),
    "rule 5: a sign-up after a withdrawal is still not eligible until confirmed": Case(
        events=[("newsletter", C, 1), ("newsletter", W, 5), ("newsletter", G, 6)],
        standing=Standing.WITHDRAWN),
    "rule 6: confirmation after withdrawal is a re-consent": Case(
        events=[("newsletter", C, 1), ("newsletter", W, 5), ("newsletter", G, 6),
                ("newsletter", C, 6.1)],
        eligible=True, standing=Standing.RE_CONSENT, reason_has="pending"),
    "rule 6: stale confirmation imported after a withdrawal does not re-subscribe": Case(
        events=[("newsletter", W, 5), ("newsletter", C, 2)],
        standing=Standing.WITHDRAWN),
    "rule 6: confirmation after a suppression is a re-consent": Case(
        events=[("newsletter", G, 7), ("newsletter", C, 8)],
        suppressions=[("newsletter", "unsubscribe", 5)],
        eligible=True, standing=Standing.RE_CONSENT),
    "rule 7: soft opt-in customer is not eligible": Case(
        customer=True, standing=Standing.SOFT_OPT_IN_ONLY, reason_has="soft opt-in"),
    "rule 7: a soft opt-in record is not newsletter consent": Case(
        events=[("offers", S, 1)], standing=Standing.SOFT_OPT_IN_ONLY),
    "rule 7: a customer with a confirmed consent is eligible on that consent": Case(
        events=[("newsletter", G, 0.5), ("newsletter", C, 1)], customer=True, eligible=True,
        standing=Standing.CONFIRMED),
    "rule 8: erasure suppression blocks every purpose": Case(
        events=[("newsletter", G, 0.5), ("newsletter", C, 1)], suppressions=[("*", "erasure", 5)],
        standing=Standing.SUPPRESSED, reason_has="erasure"),
    "rule 9: hard bounce blocks": Case(
        events=[("newsletter", G, 0.5), ("newsletter", C, 1)], bounced_on=5,
        standing=Standing.UNDELIVERABLE, reason_has="bounced"),
    "rule 9: abuse complaint (suppression for all) blocks like an objection": Case(
        events=[("newsletter", G, 0.5), ("newsletter", C, 1)], suppressions=[("*", "abuse", 5)],
        standing=Standing.SUPPRESSED, reason_has="abuse"),
    "suppression newer than confirmation blocks": Case(
        events=[("newsletter", G, 0.5), ("newsletter", C, 1)],
        suppressions=[("newsletter", "unsubscribe", 5)],
        standing=Standing.SUPPRESSED),
    "suppression of another purpose does not block": Case(
        events=[("newsletter", G, 0.5), ("newsletter", C, 1)],
        suppressions=[("offers", "unsubscribe", 5)],
        eligible=True, standing=Standing.CONFIRMED),
    "a block at the same moment as a confirmation wins": Case(
        events=[("newsletter", G, 0.5), ("newsletter", C, 5)],
        suppressions=[("newsletter", "unsubscribe", 5)],
        standing=Standing.SUPPRESSED),
    "a withdrawal at the same moment as a confirmation wins": Case(
        events=[("newsletter", G, 0.5), ("newsletter", C, 5), ("newsletter", W, 5)],
        standing=Standing.WITHDRAWN),
    "events in the future are not yet known": Case(
        events=[("newsletter", G, 1), ("newsletter", C, 200)],
        standing=Standing.UNCONFIRMED),
    "a suppression in the future is not yet known": Case(
        events=[("newsletter", G, 0.5), ("newsletter", C, 1)],
        suppressions=[("newsletter", "unsubscribe", 200)],
        eligible=True, standing=Standing.CONFIRMED),
}


@pytest.mark.parametrize("case", list(RULES.values()), ids=list(RULES))
def test_consent_rule(case: Case) -> None:
    decision = _decide(case)
    assert (decision.eligible, decision.standing) == (case.eligible, case.standing)
    assert case.reason_has in decision.reason


def test_order_of_events_does_not_change_the_decision() -> None:
    case = RULES["rule 6: confirmation after withdrawal is a re-consent"]
    backwards = Case(events=list(reversed(case.events)))
    assert _decide(backwards) == _decide(case)


def test_opt_in_proof_carries_sign_up_and_confirmation() -> None:
    decision = _decide(RULES["rule 3: confirmed double opt-in is eligible"])
    assert decision.proof is not None
    assert decision.proof.signup_at == at(1)
    assert decision.proof.confirmed_at == at(1.1)
    assert decision.proof.confirmed_ip == "192.0.2.1"


def test_a_decision_taken_later_sees_events_that_were_in_the_future() -> None:
    case = RULES["events in the future are not yet known"]
    later = _decide(case, now=at(200) + timedelta(seconds=1))
    assert (later.eligible, later.standing) == (True, Standing.CONFIRMED)


def test_undeliverable_address_without_consent_says_no_consent_first() -> None:
    decision = _decide(Case(bounced_on=5))
    assert decision.standing is Standing.NO_CONSENT
