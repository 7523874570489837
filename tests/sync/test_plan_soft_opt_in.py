"""The planner on the soft opt-in basis (docs/consent-rules.md rules 7 and 11), pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from syncd.consent.policy import Action as Consent
from syncd.consent.policy import ConsentFact, PurchaseFact, SuppressionFact
from syncd.sync.plan import Action, ContactFacts, KnownState, PlanConfig, plan_contact

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
NEWSLETTER = PlanConfig(purpose="newsletter", merge_fields={}, sync_tags=True,
                        tag_lists=("newsletter-nl",), unconfirmed_as_pending=False)
OFFERS = PlanConfig(purpose="offers", merge_fields={}, sync_tags=True, tag_lists=("offers",),
                    unconfirmed_as_pending=False, basis="soft_opt_in", soft_opt_in_months=24)
PAID = (PurchaseFact(date(2026, 6, 1), "coffee", True),
        PurchaseFact(date(2026, 8, 1), "mugs", True))
NEWSLETTER_CONSENT = (
    ConsentFact("newsletter", Consent.GIVEN, NOW - timedelta(days=3), "web_form"),
    ConsentFact("newsletter", Consent.CONFIRMED, NOW - timedelta(days=2), "web_form"))


def _person(**fields: object) -> ContactFacts:
    return ContactFacts(contact_id=1, revision=1, email="ada@example.org", **fields)  # type: ignore[arg-type]


def test_plan_config_defaults_keep_the_consent_basis() -> None:
    assert (NEWSLETTER.basis, NEWSLETTER.soft_opt_in_months, NEWSLETTER.category_tags) == (
        "consent", 24, True)


def test_a_paying_customer_is_added_subscribed_with_their_categories_as_tags() -> None:
    change = plan_contact(_person(purchases=PAID, lists=("offers",)), None, OFFERS, NOW)
    assert change.action is Action.ADD
    assert change.status == "subscribed"
    assert change.data is not None
    assert change.data.tags == ("coffee", "mugs", "offers")
    assert change.reason == "soft opt-in: customer since 2026-06-01, categories coffee, mugs"


def test_category_tags_can_be_switched_off() -> None:
    cfg = replace(OFFERS, category_tags=False)
    change = plan_contact(_person(purchases=PAID), None, cfg, NOW)
    assert change.data is not None
    assert change.data.tags == ()


def test_a_customer_with_only_a_quote_is_not_added_to_offers() -> None:
    quote = (PurchaseFact(date(2026, 6, 1), "coffee", False),)
    change = plan_contact(_person(purchases=quote), None, OFFERS, NOW)
    assert change.action is Action.SETTLE
    assert change.category == "not_customer"


def test_a_newsletter_only_person_never_reaches_offers() -> None:
    change = plan_contact(_person(events=NEWSLETTER_CONSENT), None, OFFERS, NOW)
    assert change.action is Action.SETTLE


def test_a_customer_with_no_newsletter_consent_never_reaches_the_newsletter() -> None:
    change = plan_contact(_person(purchases=PAID, is_customer=True), None, NEWSLETTER, NOW)
    assert change.action is Action.SETTLE


def test_the_consent_basis_ignores_purchases_and_tags_no_categories() -> None:
    change = plan_contact(_person(events=NEWSLETTER_CONSENT, purchases=PAID,
                                  lists=("newsletter-nl",)), None, NEWSLETTER, NOW)
    assert change.action is Action.ADD
    assert change.data is not None
    assert change.data.tags == ("newsletter-nl",)


def test_an_objection_unsubscribes_a_live_offers_member_at_once() -> None:
    objection = (ConsentFact("offers", Consent.WITHDRAWN, NOW - timedelta(hours=1), "crm"),)
    known = KnownState(settled_revision=1, fingerprint="x" * 64, esp_status="subscribed",
                       esp_email="ada@example.org")
    change = plan_contact(_person(purchases=PAID, events=objection), known, OFFERS, NOW)
    assert change.action is Action.UNSUBSCRIBE
    assert change.reason.startswith("objected on")


def test_a_live_offers_member_whose_last_paid_purchase_lapsed_is_unsubscribed() -> None:
    old = (PurchaseFact(date(2024, 1, 1), "coffee", True),)
    known = KnownState(settled_revision=1, fingerprint="x" * 64, esp_status="subscribed",
                       esp_email="ada@example.org")
    change = plan_contact(_person(purchases=old), known, OFFERS, NOW)
    assert change.action is Action.UNSUBSCRIBE
    assert change.reason == "last paid purchase 2024-01-01 older than 24 months"


def test_a_live_offers_member_with_only_a_quote_is_left_for_the_audit() -> None:
    quote = (PurchaseFact(date(2026, 6, 1), "coffee", False),)
    known = KnownState(settled_revision=1, fingerprint="x" * 64, esp_status="subscribed",
                       esp_email="ada@example.org")
    change = plan_contact(_person(purchases=quote), known, OFFERS, NOW)
    assert change.action is Action.SETTLE


def test_a_hard_bounced_customer_is_not_added_to_offers() -> None:
    change = plan_contact(_person(purchases=PAID, undeliverable_at=NOW - timedelta(days=1)),
                          None, OFFERS, NOW)
    assert change.action is Action.SETTLE
    assert change.category == "undeliverable"


def test_an_abuse_complaint_keeps_a_customer_out_of_offers() -> None:
    abuse = (SuppressionFact("*", "abuse", NOW - timedelta(days=1)),)
    change = plan_contact(_person(purchases=PAID, suppressions=abuse), None, OFFERS, NOW)
    assert change.action is Action.SETTLE
    assert change.category == "suppressed"
