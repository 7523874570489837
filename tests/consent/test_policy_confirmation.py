"""Rule 10 in the policy: a confirmation counts only with a sign-up of the same purpose
at or before it; which sign-up it confirms, and what the operator reads when it confirms
none. Written for survivors of the mutation run (docs/mutation.md)."""

from __future__ import annotations

from syncd.consent.policy import Action, ConsentFact, Standing, SuppressionFact, decide
from tests.builders import at

NOW = at(100)
G, C, W = Action.GIVEN, Action.CONFIRMED, Action.WITHDRAWN


def fact(action: Action, day: float, *, purpose: str = "newsletter",
         ip: str = "192.0.2.1") -> ConsentFact:
    return ConsentFact(purpose=purpose, action=action, occurred_at=at(day), source="web_form",
                       ip=ip, text_version="v3")


def test_a_lone_confirmation_is_reported_as_confirming_no_sign_up_with_its_moment() -> None:
    decision = decide(purpose="newsletter", now=NOW, events=[fact(C, 1)])

    assert (decision.eligible, decision.proof) == (False, None)
    assert decision.reason == ("newsletter confirmation 2026-03-02 09:00 UTC confirms no "
                               "sign-up of that purpose at or before it: no consent")


def test_the_confirmation_confirms_the_latest_of_the_sign_ups_before_it() -> None:
    decision = decide(purpose="newsletter", now=NOW, events=[
        fact(G, 1, ip="192.0.2.1"), fact(G, 2, ip="192.0.2.2"), fact(C, 3)])

    assert decision.proof is not None
    assert (decision.proof.signup_at, decision.proof.signup_ip) == (at(2), "192.0.2.2")


def test_a_lone_confirmation_of_a_bounced_address_is_still_no_consent() -> None:
    # Without a sign-up there is no consent at all; the bounce is not the reason.
    decision = decide(purpose="newsletter", now=NOW, events=[fact(C, 1)],
                      undeliverable_since=at(5))

    assert decision.standing is Standing.UNCONFIRMED


def test_a_re_consent_after_a_lone_confirmation_and_a_withdrawal_needs_its_own_sign_up(
        ) -> None:
    # The new confirmation after the withdrawal confirms nothing without a sign-up.
    decision = decide(purpose="newsletter", now=NOW,
                      events=[fact(C, 1), fact(W, 5), fact(C, 7)])

    assert (decision.eligible, decision.standing) == (False, Standing.UNCONFIRMED)


def test_the_reason_for_a_re_consent_names_both_moments_and_the_pending_push() -> None:
    decision = decide(purpose="newsletter", now=NOW, events=[fact(G, 6), fact(C, 7)],
                      suppressions=[SuppressionFact("newsletter", "unsubscribe", at(5))])

    assert decision.reason == (
        "re-consent: newsletter consent confirmed 2026-03-08 09:00 UTC after a withdrawal "
        "or suppression on 2026-03-06 09:00 UTC; goes to the ESP as pending")
