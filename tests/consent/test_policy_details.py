"""The consent policy's details that the rule table (test_policy_rules.py) leaves open:
which sign-up the opt-in proof carries, what the reason tells the operator, and what the
policy assumes when a fact is not given. Each was a mutant of policy.py that survived
the table (docs/mutation.md)."""

from __future__ import annotations

from syncd.consent.policy import Action, ConsentFact, Standing, SuppressionFact, decide
from tests.builders import at

NOW = at(100)
G, C, W = Action.GIVEN, Action.CONFIRMED, Action.WITHDRAWN


def fact(purpose: str, action: Action, day: float, *, ip: str = "192.0.2.1",
         text_version: str | None = "v3") -> ConsentFact:
    return ConsentFact(purpose=purpose, action=action, occurred_at=at(day), source="web_form",
                       ip=ip, text_version=text_version)


def test_nobody_is_taken_for_a_customer_unless_the_crm_says_so() -> None:
    # Rule 7/11: the soft opt-in needs a paid purchase on record; no fact, no customer.
    decision = decide(purpose="newsletter", events=[], now=NOW)

    assert decision.standing is Standing.NO_CONSENT


def test_the_proof_is_the_sign_up_the_confirmation_confirmed_not_a_later_one() -> None:
    # Rule 4/10: the proof sent to Mailchimp (ip_signup/timestamp_signup) is the sign-up
    # at or before the confirmation; a newer, unconfirmed sign-up proves nothing yet.
    decision = decide(purpose="newsletter", now=NOW, events=[
        fact("newsletter", G, 1, ip="192.0.2.1"), fact("newsletter", C, 2),
        fact("newsletter", G, 3, ip="192.0.2.99")])

    assert decision.proof is not None
    assert (decision.proof.signup_at, decision.proof.signup_ip) == (at(1), "192.0.2.1")


def test_a_sign_up_at_the_moment_of_its_confirmation_is_the_proof() -> None:
    # Rule 10: a confirmation counts with a sign-up "at or before" it (an import may give
    # both the same moment).
    decision = decide(purpose="newsletter", now=NOW,
                      events=[fact("newsletter", G, 1), fact("newsletter", C, 1)])

    assert decision.proof is not None
    assert decision.proof.signup_at == at(1)


def test_of_two_sign_ups_at_one_moment_the_first_recorded_is_the_proof() -> None:
    # Ties break by ledger order, the same way every run: the proof (and so the member
    # fingerprint) must not flip between runs and cause needless updates.
    decision = decide(purpose="newsletter", now=NOW, events=[
        fact("newsletter", G, 1, ip="192.0.2.1"), fact("newsletter", G, 1, ip="192.0.2.2"),
        fact("newsletter", C, 2)])

    assert decision.proof is not None
    assert decision.proof.signup_ip == "192.0.2.1"


def test_the_reason_for_a_suppression_says_only_a_new_confirmed_consent_brings_them_back(
        ) -> None:
    decision = decide(purpose="newsletter", now=NOW, events=[fact("newsletter", C, 1)],
                      suppressions=[SuppressionFact("newsletter", "unsubscribe", at(5))])

    assert decision.reason == ("suppressed since 2026-03-06 09:00 UTC (unsubscribe); "
                               "only a new confirmed consent brings them back")


def test_the_reason_for_a_hard_bounce_says_not_pushed_until_the_address_changes() -> None:
    decision = decide(purpose="newsletter", now=NOW, events=[fact("newsletter", G, 0.5),
                                                             fact("newsletter", C, 1)],
                      undeliverable_since=at(5))

    assert decision.reason == ("address bounced (hard) 2026-03-06 09:00 UTC; "
                               "not pushed until the address changes")


def test_the_reason_for_a_confirmed_consent_names_the_consent_text_shown() -> None:
    # Rule 4: what the person was told (the consent text version) is part of the proof.
    decision = decide(purpose="newsletter", now=NOW,
                      events=[fact("newsletter", G, 1), fact("newsletter", C, 2)])

    assert decision.reason == ("newsletter consent confirmed 2026-03-03 09:00 UTC via "
                               "web_form, text v3")


def test_the_reason_for_a_confirmed_consent_without_a_text_version_names_none() -> None:
    decision = decide(purpose="newsletter", now=NOW,
                      events=[fact("newsletter", G, 0.5),
                              fact("newsletter", C, 2, text_version=None)])

    assert decision.reason == "newsletter consent confirmed 2026-03-03 09:00 UTC via web_form"


def test_an_unconfirmed_sign_up_is_dated_by_the_latest_sign_up() -> None:
    decision = decide(purpose="newsletter", now=NOW, events=[
        fact("newsletter", G, 1), fact("newsletter", G, 4), fact("newsletter", G, 2)])

    assert decision.standing is Standing.UNCONFIRMED
    assert decision.reason.startswith("newsletter consent given 2026-03-05 09:00 UTC")


def test_a_withdrawal_of_another_purpose_is_no_consent_for_that_purpose() -> None:
    # Rule 1: "consent only for: offers" would tell the operator a consent exists that
    # the person took back.
    decision = decide(purpose="newsletter", now=NOW, events=[fact("offers", W, 5)])

    assert decision.standing is Standing.NO_CONSENT


def test_the_reason_lists_every_other_purpose_consented_to() -> None:
    decision = decide(purpose="newsletter", now=NOW,
                      events=[fact("offers", G, 1), fact("ebook", G, 2)])

    assert decision.standing is Standing.OTHER_PURPOSE_ONLY
    assert decision.reason == "no newsletter consent; consent only for: ebook, offers"


def test_a_confirmation_at_the_very_moment_of_the_decision_is_known() -> None:
    # Only events *later* than now are not yet known.
    decision = decide(purpose="newsletter", now=NOW, events=[fact("newsletter", G, 0.5),
                                                             fact("newsletter", C, 100)])

    assert decision.standing is Standing.CONFIRMED


def test_a_suppression_at_the_very_moment_of_the_decision_blocks() -> None:
    decision = decide(purpose="newsletter", now=NOW, events=[fact("newsletter", C, 1)],
                      suppressions=[SuppressionFact("newsletter", "unsubscribe", NOW)])

    assert decision.standing is Standing.SUPPRESSED


def test_a_future_event_recorded_first_does_not_hide_the_events_after_it() -> None:
    # The ledger's order is the order of recording, not of occurrence.
    decision = decide(purpose="newsletter", now=NOW,
                      events=[fact("newsletter", W, 200), fact("newsletter", G, 0.5),
                              fact("newsletter", C, 1)])

    assert decision.standing is Standing.CONFIRMED


def test_a_soft_opt_in_record_of_the_purpose_is_neither_consent_nor_a_withdrawal() -> None:
    # Rule 7: the soft opt-in is another legal basis; it never blocks and never admits.
    decision = decide(purpose="newsletter", now=NOW,
                      events=[fact("newsletter", Action.SOFT_OPT_IN, 1)])

    assert decision.standing is Standing.SOFT_OPT_IN_ONLY


def test_of_two_confirmations_at_one_moment_the_first_recorded_is_the_proof() -> None:
    decision = decide(purpose="newsletter", now=NOW, events=[fact("newsletter", G, 0.5),
        fact("newsletter", C, 2, ip="192.0.2.1"), fact("newsletter", C, 2, ip="192.0.2.2")])

    assert decision.proof is not None
    assert decision.proof.confirmed_ip == "192.0.2.1"


def test_of_two_withdrawals_at_one_moment_the_first_recorded_is_named() -> None:
    first = ConsentFact("newsletter", W, at(5), source="esp_webhook")
    second = ConsentFact("newsletter", W, at(5), source="cli")

    decision = decide(purpose="newsletter", now=NOW, events=[first, second])

    assert decision.reason.endswith("via esp_webhook")


def test_of_two_suppressions_at_one_moment_the_first_recorded_is_named() -> None:
    decision = decide(purpose="newsletter", now=NOW, events=[fact("newsletter", C, 1)],
                      suppressions=[SuppressionFact("*", "abuse", at(5)),
                                    SuppressionFact("newsletter", "unsubscribe", at(5))])

    assert "(abuse)" in decision.reason


def test_a_re_consent_carries_the_proof_of_the_new_confirmation() -> None:
    # Rule 4/6: the re-consent goes to Mailchimp as pending with the new sign-up and
    # confirmation (ip_signup/timestamp_signup, ip_opt/timestamp_opt), not without proof.
    decision = decide(purpose="newsletter", now=NOW, events=[
        fact("newsletter", C, 1), fact("newsletter", W, 5),
        fact("newsletter", G, 6, ip="192.0.2.6"), fact("newsletter", C, 7, ip="192.0.2.7")])

    assert decision.standing is Standing.RE_CONSENT
    assert decision.proof is not None
    assert (decision.proof.signup_at, decision.proof.signup_ip) == (at(6), "192.0.2.6")
    assert (decision.proof.confirmed_at, decision.proof.confirmed_ip) == (at(7), "192.0.2.7")
