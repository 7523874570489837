"""The shipped sample CRM holds one example of each consent rule, and each line says what
the demo expects of it: checked with the real line checks and the pure policy, so an
example cannot be lost or turned into another one silently. Its purchases move with the
demo's clock, so the customer's soft opt-in never runs out as time passes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from syncd.config import load_settings
from syncd.consent.policy import ConsentFact, Decision, PurchaseFact, decide, decide_soft_opt_in
from syncd.crm.import_format import PRECHECKED_MESSAGE, ImportRecord, Vocabulary, check
from syncd.demo.cast import (
    CAST,
    CUSTOMER,
    HUGO,
    PRETICKED,
    SAMPLE_WRITTEN_ON,
    Example,
    sample_path,
    sample_text,
)
from syncd.demo.stage import demo_config_path

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _lines() -> dict[str, tuple[int, dict[str, Any]]]:
    found = {}
    for number, line in enumerate(sample_path().read_text("utf-8").splitlines(), start=1):
        doc = json.loads(line)
        found[doc["email"]] = (number, doc)
    return found


def _vocabulary() -> Vocabulary:
    settings = load_settings(demo_config_path())
    return Vocabulary(lists=frozenset(settings.lists), purposes=settings.purposes)


def test_sample_has_exactly_one_line_per_cast_member() -> None:
    assert sorted(_lines()) == sorted(example.email for example in CAST)


def test_cast_covers_every_rule_the_demo_shows() -> None:
    rules = {example.rule.split(":")[0] for example in CAST}
    assert {"rule 1", "rule 2", "rule 3", "rule 5", "rule 7"} <= rules
    assert {example.pushed for example in CAST} == {"subscribed", "no", "parked",
                                                    "refused at import"}
    newsletter_lists = {name for example in CAST if example.pushed == "subscribed"
                        for name in example.lists if name.startswith("newsletter-")}
    assert newsletter_lists == {"newsletter-nl", "newsletter-en"}


@pytest.mark.parametrize("example", [e for e in CAST if e.standing is not None],
                         ids=lambda e: e.email.split("@")[0])
def test_sample_line_gets_the_expected_newsletter_standing(example: Example) -> None:
    number, raw = _lines()[example.email]
    record = check(number, raw, _vocabulary(), NOW)
    assert isinstance(record, ImportRecord), record
    facts = [ConsentFact(purpose=c.purpose, action=c.action, occurred_at=c.occurred_at,
                         source=c.source, ip=c.ip) for c in record.records]
    decision = decide(purpose="newsletter", events=facts,
                      is_customer=bool(record.data.customer), now=NOW)
    assert str(decision.standing) == example.standing
    assert decision.eligible is example.eligible
    assert tuple(record.data.lists) == example.lists


def test_sample_preticked_line_is_refused_by_the_import_checks() -> None:
    number, raw = _lines()[PRETICKED.email]
    errors = check(number, raw, _vocabulary(), NOW)
    assert isinstance(errors, list)
    assert [(e.field, e.message) for e in errors] == [
        ("consents[0].prechecked", PRECHECKED_MESSAGE)]


def _offers_decision(text: str, email: str, now: datetime) -> Decision:
    """The offers target's decision for one line of `text`, checked as the import checks
    it on `now` (a purchase after `now` is refused there)."""
    settings = load_settings(demo_config_path())
    offers = settings.target("offers")
    vocabulary = Vocabulary(lists=frozenset(settings.lists), purposes=settings.purposes)
    for number, line in enumerate(text.splitlines(), start=1):
        raw = json.loads(line)
        if raw["email"] != email:
            continue
        record = check(number, raw, vocabulary, now)
        assert isinstance(record, ImportRecord), record
        facts = [ConsentFact(purpose=c.purpose, action=c.action, occurred_at=c.occurred_at,
                             source=c.source) for c in record.records]
        return decide_soft_opt_in(
            purpose=offers.purposes[0], events=facts, now=now,
            months=offers.soft_opt_in_months,
            purchases=[PurchaseFact(p.day, p.category, p.paid) for p in record.data.purchases])
    raise AssertionError(f"{email} is not in the sample")


def test_the_sample_on_the_day_it_was_written_is_the_shipped_file() -> None:
    assert sample_text(SAMPLE_WRITTEN_ON) == sample_path().read_text("utf-8")


def test_demo_data_built_with_a_clock_far_in_the_future_still_admits_the_customer_to_offers(
        ) -> None:
    future = datetime(2046, 6, 1, 12, tzinfo=UTC)
    decision = _offers_decision(sample_text(future.date()), CUSTOMER.email, future)
    assert decision.eligible, decision.reason


def test_the_shipped_dates_alone_would_have_expired_by_then() -> None:
    future = datetime(2046, 6, 1, 12, tzinfo=UTC)
    shipped = sample_path().read_text("utf-8")
    assert not _offers_decision(shipped, CUSTOMER.email, future).eligible


def test_moved_purchases_never_make_a_quote_a_customer() -> None:
    future = datetime(2046, 6, 1, 12, tzinfo=UTC)
    assert not _offers_decision(sample_text(future.date()), HUGO.email, future).eligible
