"""The soft opt-in basis (docs/consent-rules.md rules 7 and 11), pure: who a soft opt-in
target admits, and that consent and soft opt-in never stand in for each other."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from syncd.consent.policy import (
    Action,
    ConsentFact,
    PurchaseFact,
    Standing,
    SuppressionFact,
    decide,
    decide_soft_opt_in,
    months_before,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PAID = PurchaseFact(date(2026, 6, 1), "coffee", paid=True)


def _objection(at: datetime, purpose: str = "offers") -> ConsentFact:
    return ConsentFact(purpose, Action.WITHDRAWN, at, "crm")


def _confirmed_newsletter() -> list[ConsentFact]:
    return [ConsentFact("newsletter", Action.GIVEN, NOW - timedelta(days=3), "web_form"),
            ConsentFact("newsletter", Action.CONFIRMED, NOW - timedelta(days=2), "web_form")]


def test_a_paid_purchase_within_the_period_admits_with_its_reason() -> None:
    decision = decide_soft_opt_in(purpose="offers", purchases=[PAID], now=NOW, months=24)
    assert decision.eligible
    assert decision.standing is Standing.CUSTOMER
    assert decision.reason == "soft opt-in: customer since 2026-06-01, categories coffee"
    assert decision.categories == ("coffee",)


def test_a_quote_or_a_free_product_does_not_make_a_customer() -> None:
    unpaid = [PurchaseFact(date(2026, 6, 1), "coffee", paid=False),
              PurchaseFact(date(2026, 7, 1), "samples", paid=False)]
    decision = decide_soft_opt_in(purpose="offers", purchases=unpaid, now=NOW, months=24)
    assert not decision.eligible
    assert decision.standing is Standing.NOT_CUSTOMER
    assert decision.reason.startswith("not a customer: no paid purchase")


def test_a_paid_purchase_older_than_the_period_does_not_admit() -> None:
    old = PurchaseFact(date(2024, 12, 1), "coffee", paid=True)
    decision = decide_soft_opt_in(purpose="offers", purchases=[old], now=NOW, months=24)
    assert not decision.eligible
    assert decision.standing is Standing.LAPSED
    assert decision.reason == "last paid purchase 2024-12-01 older than 24 months"


def test_a_paid_purchase_on_the_first_day_of_the_period_admits() -> None:
    edge = PurchaseFact(date(2024, 12, 2), "coffee", paid=True)
    assert decide_soft_opt_in(purpose="offers", purchases=[edge], now=NOW, months=24).eligible
    day_before = PurchaseFact(date(2024, 12, 1), "coffee", paid=True)
    assert not decide_soft_opt_in(purpose="offers", purchases=[day_before], now=NOW,
                                  months=24).eligible


def test_the_period_is_the_configured_number_of_months() -> None:
    bought = PurchaseFact(date(2026, 3, 1), "coffee", paid=True)
    assert decide_soft_opt_in(purpose="offers", purchases=[bought], now=NOW,
                              months=12).eligible
    assert not decide_soft_opt_in(purpose="offers", purchases=[bought], now=NOW,
                                  months=6).eligible


def test_a_purchase_dated_after_now_is_not_yet_known() -> None:
    future = PurchaseFact(date(2026, 12, 3), "coffee", paid=True)
    assert decide_soft_opt_in(purpose="offers", purchases=[future], now=NOW,
                              months=24).standing is Standing.NOT_CUSTOMER


def test_an_objection_at_the_purchase_blocks() -> None:
    at_purchase = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
    decision = decide_soft_opt_in(purpose="offers", purchases=[PAID],
                                  events=[_objection(at_purchase)], now=NOW, months=24)
    assert not decision.eligible
    assert decision.standing is Standing.WITHDRAWN
    assert decision.reason.startswith("objected on 2026-06-01 15:00 UTC via crm")


def test_a_later_purchase_does_not_undo_an_objection() -> None:
    events = [_objection(datetime(2026, 7, 1, tzinfo=UTC))]
    again = PurchaseFact(date(2026, 11, 1), "coffee", paid=True)
    assert decide_soft_opt_in(purpose="offers", purchases=[PAID, again], events=events,
                              now=NOW, months=24).standing is Standing.WITHDRAWN


def test_the_latest_of_several_objections_is_named() -> None:
    events = [_objection(datetime(2026, 7, 1, tzinfo=UTC)),
              _objection(datetime(2026, 9, 1, tzinfo=UTC)),
              _objection(datetime(2026, 8, 1, tzinfo=UTC))]
    assert "objected on 2026-09-01" in decide_soft_opt_in(
        purpose="offers", purchases=[PAID], events=events, now=NOW, months=24).reason


def test_an_objection_after_now_is_not_yet_known() -> None:
    events = [_objection(NOW + timedelta(minutes=1))]
    assert decide_soft_opt_in(purpose="offers", purchases=[PAID], events=events, now=NOW,
                              months=24).eligible


def test_an_objection_to_another_purpose_does_not_block_offers() -> None:
    events = [_objection(NOW - timedelta(days=1), purpose="newsletter")]
    assert decide_soft_opt_in(purpose="offers", purchases=[PAID], events=events, now=NOW,
                              months=24).eligible


def test_an_abuse_complaint_blocks_every_marketing_purpose_offers_too() -> None:
    block = SuppressionFact("*", "abuse", NOW - timedelta(days=1))
    decision = decide_soft_opt_in(purpose="offers", purchases=[PAID], suppressions=[block],
                                  now=NOW, months=24)
    assert not decision.eligible
    assert decision.standing is Standing.SUPPRESSED
    assert "(abuse)" in decision.reason


def test_a_suppression_of_offers_blocks_and_one_of_the_newsletter_does_not() -> None:
    offers = SuppressionFact("offers", "objection", NOW - timedelta(days=1))
    newsletter = SuppressionFact("newsletter", "unsubscribe", NOW - timedelta(days=1))
    assert decide_soft_opt_in(purpose="offers", purchases=[PAID], suppressions=[offers],
                              now=NOW, months=24).standing is Standing.SUPPRESSED
    assert decide_soft_opt_in(purpose="offers", purchases=[PAID], suppressions=[newsletter],
                              now=NOW, months=24).eligible


def test_a_suppression_after_now_is_not_yet_known() -> None:
    block = SuppressionFact("*", "abuse", NOW + timedelta(seconds=1))
    assert decide_soft_opt_in(purpose="offers", purchases=[PAID], suppressions=[block],
                              now=NOW, months=24).eligible


def test_an_objection_newer_than_a_suppression_is_the_reason_given() -> None:
    block = SuppressionFact("*", "abuse", NOW - timedelta(days=5))
    later = _objection(NOW - timedelta(days=1))
    assert decide_soft_opt_in(purpose="offers", purchases=[PAID], events=[later],
                              suppressions=[block], now=NOW,
                              months=24).standing is Standing.WITHDRAWN
    earlier = _objection(NOW - timedelta(days=9))
    assert decide_soft_opt_in(purpose="offers", purchases=[PAID], events=[earlier],
                              suppressions=[block], now=NOW,
                              months=24).standing is Standing.SUPPRESSED


def test_a_hard_bounce_blocks_a_customer() -> None:
    decision = decide_soft_opt_in(purpose="offers", purchases=[PAID], now=NOW, months=24,
                                  undeliverable_since=NOW - timedelta(days=1))
    assert not decision.eligible
    assert decision.standing is Standing.UNDELIVERABLE


def test_categories_are_those_of_paid_purchases_within_the_period_and_since_is_the_first(
        ) -> None:
    bought = [PurchaseFact(date(2023, 1, 5), "tea", paid=True),
              PurchaseFact(date(2026, 5, 1), "coffee", paid=True),
              PurchaseFact(date(2026, 6, 1), "mugs", paid=True),
              PurchaseFact(date(2026, 7, 1), "grinders", paid=False),
              PurchaseFact(date(2026, 8, 1), "coffee", paid=True)]
    decision = decide_soft_opt_in(purpose="offers", purchases=bought, now=NOW, months=24)
    assert decision.categories == ("coffee", "mugs")
    assert decision.reason == "soft opt-in: customer since 2023-01-05, categories coffee, mugs"


def test_a_newsletter_consent_never_admits_to_offers() -> None:
    decision = decide_soft_opt_in(purpose="offers", purchases=[], now=NOW, months=24,
                                  events=_confirmed_newsletter())
    assert not decision.eligible
    assert decision.standing is Standing.NOT_CUSTOMER


def test_a_customer_without_newsletter_consent_never_reaches_the_newsletter() -> None:
    soft = [ConsentFact("offers", Action.SOFT_OPT_IN, NOW - timedelta(days=9), "import")]
    decision = decide(purpose="newsletter", events=soft, is_customer=True, now=NOW)
    assert not decision.eligible
    assert decision.standing is Standing.SOFT_OPT_IN_ONLY


def test_months_before_keeps_the_day_or_takes_the_months_last() -> None:
    assert months_before(date(2026, 12, 2), 24) == date(2024, 12, 2)
    assert months_before(date(2026, 3, 31), 1) == date(2026, 2, 28)
    assert months_before(date(2024, 3, 31), 1) == date(2024, 2, 29)
    assert months_before(date(2026, 1, 15), 1) == date(2025, 12, 15)


_DAYS = st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 12, 2))
_PURCHASES = st.lists(st.builds(PurchaseFact, _DAYS, st.sampled_from(["a", "b", "c"]),
                                st.booleans()), max_size=6)


@given(_PURCHASES, st.integers(min_value=1, max_value=120))
def test_admitted_exactly_when_a_paid_purchase_lies_within_the_period(
        bought: list[PurchaseFact], months: int) -> None:
    cutoff = months_before(NOW.date(), months)
    decision = decide_soft_opt_in(purpose="offers", purchases=bought, now=NOW, months=months)
    within = {p.category for p in bought if p.paid and p.on >= cutoff}
    assert decision.eligible is bool(within)
    assert set(decision.categories) == (within if decision.eligible else set())


@given(_PURCHASES, st.datetimes(min_value=datetime(2020, 1, 1),
                                max_value=datetime(2026, 12, 2, 12, 0),
                                timezones=st.just(UTC)))
def test_nobody_who_objected_is_ever_admitted(bought: list[PurchaseFact],
                                              at: datetime) -> None:
    decision = decide_soft_opt_in(purpose="offers", purchases=bought,
                                  events=[_objection(at)], now=NOW, months=24)
    assert not decision.eligible
    assert decision.standing is Standing.WITHDRAWN


def test_every_refusal_is_a_plain_false_with_its_full_reason() -> None:
    block = SuppressionFact("*", "abuse", datetime(2026, 11, 1, 8, 0, tzinfo=UTC))
    objection = _objection(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
    cases = [
        (decide_soft_opt_in(purpose="offers", purchases=[PAID], suppressions=[block],
                            now=NOW, months=24),
         "suppressed since 2026-11-01 08:00 UTC (abuse): no offers on the soft opt-in "
         "basis"),
        (decide_soft_opt_in(purpose="offers", purchases=[PAID], events=[objection],
                            now=NOW, months=24),
         "objected on 2026-11-02 08:00 UTC via crm: no offers on the soft opt-in basis, "
         "whatever they buy later"),
        (decide_soft_opt_in(purpose="offers", purchases=[], now=NOW, months=24),
         "not a customer: no paid purchase (a quote or a free product does not make a "
         "customer)"),
        (decide_soft_opt_in(purpose="offers", purchases=[PAID], now=NOW, months=24,
                            undeliverable_since=datetime(2026, 11, 3, 8, 0, tzinfo=UTC)),
         "address bounced (hard) 2026-11-03 08:00 UTC; not pushed until the address "
         "changes"),
    ]
    for decision, reason in cases:
        assert decision.eligible is False
        assert decision.reason == reason


def test_a_paid_purchase_made_today_admits() -> None:
    today = PurchaseFact(NOW.date(), "coffee", paid=True)
    assert decide_soft_opt_in(purpose="offers", purchases=[today], now=NOW,
                              months=24).eligible


def test_an_objection_at_this_very_moment_blocks() -> None:
    assert decide_soft_opt_in(purpose="offers", purchases=[PAID], events=[_objection(NOW)],
                              now=NOW, months=24).standing is Standing.WITHDRAWN


def test_of_two_objections_at_the_same_moment_the_first_given_is_named() -> None:
    at = NOW - timedelta(days=1)
    events = [ConsentFact("offers", Action.WITHDRAWN, at, "checkout"),
              ConsentFact("offers", Action.WITHDRAWN, at, "crm")]
    assert "via checkout" in decide_soft_opt_in(purpose="offers", purchases=[PAID],
                                                events=events, now=NOW, months=24).reason


def test_an_objection_and_a_suppression_at_the_same_moment_name_the_objection() -> None:
    at = NOW - timedelta(days=1)
    decision = decide_soft_opt_in(purpose="offers", purchases=[PAID],
                                  events=[_objection(at)],
                                  suppressions=[SuppressionFact("offers", "objection", at)],
                                  now=NOW, months=24)
    assert decision.standing is Standing.WITHDRAWN
