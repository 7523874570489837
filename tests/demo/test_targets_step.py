"""The demo's two-target step: its pure check fails, naming the rule, when the audiences
read back say otherwise (a quote admitted to offers, the customer in the newsletter, the
GDPR permission off, the category tag missing); the real run shows who is where."""

from __future__ import annotations

from dataclasses import replace

from syncd.demo.cast import ANNA, BEN, FRANK, HUGO
from syncd.demo.offers_step import Listed, TargetsState, check_targets
from tests.demo.conftest import DemoRun

ON = Listed("subscribed", ("newsletter-en",), {"Email": True})
CUSTOMER = Listed("subscribed", ("coffee", "offers"))


def _good() -> TargetsState:
    return TargetsState(
        report={"outcome": "succeeded", "added": 1, "failed": 0},
        newsletter={BEN.email: ON, ANNA.email: Listed("unsubscribed", (), {"Email": False})},
        offers={FRANK.email: CUSTOMER})


def _failed(state: TargetsState) -> list[str]:
    return [c.name for c in check_targets(state) if not c.passed]


def test_targets_check_passes_on_the_expected_state() -> None:
    assert _failed(_good()) == []


def test_targets_check_fails_when_a_quote_admits_to_offers() -> None:
    state = _good()
    failed = _failed(replace(state, offers={**state.offers, HUGO.email: CUSTOMER}))

    assert "the offers audience holds exactly the paying customers (soft opt-in)" in failed
    assert any(name.startswith(HUGO.email) for name in failed)


def test_targets_check_fails_when_the_customer_reaches_the_newsletter() -> None:
    state = _good()
    failed = _failed(replace(state, newsletter={**state.newsletter, FRANK.email: ON}))

    assert failed == [f"{FRANK.email} (a customer without newsletter consent) is not in the "
                      "newsletter audience"]


def test_targets_check_fails_when_the_gdpr_permission_is_off() -> None:
    state = _good()
    off = replace(ON, permissions={"Email": False})

    assert _failed(replace(state, newsletter={**state.newsletter, BEN.email: off})) == [
        f"{BEN.email}: GDPR permission \"Email\" enabled (a confirmed newsletter consent)"]


def test_targets_check_fails_without_the_category_tag() -> None:
    state = replace(_good(), offers={FRANK.email: Listed("subscribed", ("offers",))})

    assert _failed(state) == [
        f"{FRANK.email}: tagged with the category bought (coffee): similar products only"]


def test_demo_shows_who_reaches_which_target(demo_json_run: DemoRun) -> None:
    step = next(s for s in demo_json_run.document["steps"] if s["step"] == "targets")
    people = {p["email"]: p for p in step["facts"]["people"]}

    assert step["ok"] is True, [c for c in step["checks"] if not c["passed"]]
    assert people[FRANK.email]["offers"] == "subscribed"
    assert "coffee" in people[FRANK.email]["tags"]
    assert people[FRANK.email]["newsletter"] == "-"
    assert people[HUGO.email]["offers"] == "-"
    assert people[HUGO.email]["offers_reason"].startswith("not a customer")
    assert people[BEN.email]["permission"] is True
    assert people[BEN.email]["offers"] == "-"
