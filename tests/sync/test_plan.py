"""The pure planner: each row reads like a rule of consent-rules.md."""

from __future__ import annotations

from datetime import timedelta

import pytest

from syncd.consent.policy import Action as Consent
from syncd.consent.policy import ConsentFact, SuppressionFact
from syncd.sync.plan import Action, ContactFacts, KnownState, PlanConfig, fingerprint, plan_contact
from tests.builders import at

CFG = PlanConfig(purpose="newsletter", merge_fields={"first_name": "FNAME", "city": "CITY"},
                 sync_tags=True, tag_lists=("newsletter-en", "newsletter-nl"),
                 unconfirmed_as_pending=False)
NOW = at(30)


def fact(action: Consent, days: float, purpose: str = "newsletter") -> ConsentFact:
    return ConsentFact(purpose=purpose, action=action, occurred_at=at(days), source="web_form",
                       ip="192.0.2.7")


CONFIRMED = (fact(Consent.GIVEN, 0), fact(Consent.CONFIRMED, 0.1))
WITHDRAWN = (*CONFIRMED, fact(Consent.WITHDRAWN, 2))
RECONSENT = (*WITHDRAWN, fact(Consent.GIVEN, 5), fact(Consent.CONFIRMED, 5.1))


def person(events: tuple[ConsentFact, ...] = CONFIRMED, **fields: object) -> ContactFacts:
    values: dict[str, object] = {"contact_id": 1, "revision": 3, "email": "ada@example.org",
                                 "first_name": "Ada", "events": events,
                                 "lists": ("newsletter-nl", "offers")}
    values.update(fields)
    return ContactFacts(**values)  # type: ignore[arg-type]


def known(status: str | None, facts: ContactFacts | None = None, **fields: object) -> KnownState:
    print_ = None
    if facts is not None:
        print_ = plan_contact(facts, None, CFG, NOW).fingerprint
    values: dict[str, object] = {"settled_revision": 2, "esp_status": status,
                                 "fingerprint": print_, "esp_email": "ada@example.org"}
    values.update(fields)
    return KnownState(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("facts", "state", "action", "status"), [
    pytest.param(person(), None, Action.ADD, "subscribed", id="confirmed-new-is-added"),
    pytest.param(person(RECONSENT), None, Action.ADD, "pending", id="reconsent-new-is-pending"),
    pytest.param(person(WITHDRAWN), known("subscribed"), Action.UNSUBSCRIBE, "unsubscribed",
                 id="withdrawal-of-live-member-unsubscribes"),
    pytest.param(person(WITHDRAWN), None, Action.SETTLE, None, id="withdrawn-never-added"),
    pytest.param(person(RECONSENT), known("unsubscribed"), Action.RECONSENT, "pending",
                 id="reconsent-after-unsubscribe-goes-pending"),
    pytest.param(person(CONFIRMED), known("unsubscribed"), Action.SETTLE, None,
                 id="unsubscribed-at-esp-is-never-resubscribed"),
    pytest.param(person((fact(Consent.GIVEN, 1),)), None, Action.SETTLE, None,
                 id="unconfirmed-not-pushed"),
    pytest.param(person(tuple(fact(a, d, "ebook") for a, d in ((Consent.GIVEN, 0),
                                                              (Consent.CONFIRMED, 0.1)))),
                 None, Action.SETTLE, None, id="ebook-lead-not-pushed"),
    pytest.param(person((), is_customer=True), None, Action.SETTLE, None,
                 id="customer-soft-opt-in-not-pushed"),
    pytest.param(person(undeliverable_at=at(3)), None, Action.SETTLE, None,
                 id="hard-bounce-not-pushed"),
    pytest.param(person(inbox_block=True), None, Action.HOLD, None,
                 id="unapplied-unsubscribe-webhook-blocks"),
    pytest.param(person(suppressions=(SuppressionFact("*", "erasure", at(4)),)), None,
                 Action.SETTLE, None, id="suppressed-not-pushed"),
])
def test_plan_table(facts: ContactFacts, state: KnownState | None, action: Action,
                    status: str | None) -> None:
    change = plan_contact(facts, state, CFG, NOW)

    assert (change.action, change.status) == (action, status)
    assert change.reason


def test_unsubscribe_reported_by_mailchimp_needs_no_call() -> None:
    from_esp = ConsentFact(purpose="newsletter", action=Consent.WITHDRAWN, occurred_at=at(2),
                           source="esp_webhook")

    change = plan_contact(person((*CONFIRMED, from_esp)), known("subscribed"), CFG, NOW)

    assert (change.action, change.esp_status_after) == (Action.SETTLE, "unsubscribed")


def test_reconsent_is_not_sent_again_while_pending() -> None:
    facts = person(RECONSENT)

    change = plan_contact(facts, known("pending", facts), CFG, NOW)

    assert change.action is Action.SETTLE


def test_profile_change_of_live_member_is_a_data_update_without_tags_call() -> None:
    before = person()
    after = person(first_name="Adaline")

    change = plan_contact(after, known("subscribed", before), CFG, NOW)

    assert (change.action, change.write_data, change.write_tags) == (Action.UPDATE, True, False)
    assert change.data is not None
    assert change.data.merge_fields["FNAME"] == "Adaline"


def test_list_change_is_a_tags_only_update() -> None:
    before = person()
    after = person(lists=("newsletter-en",))

    change = plan_contact(after, known("subscribed", before), CFG, NOW)

    assert (change.write_data, change.write_tags) == (False, True)
    assert change.inactive_tags == ("newsletter-nl",)


def test_tags_mirror_only_lists_of_the_synced_purpose() -> None:
    change = plan_contact(person(lists=("newsletter-nl", "offers", "ebook-leads")), None, CFG,
                          NOW)

    assert change.data is not None
    assert change.data.tags == ("newsletter-nl",)


def test_merge_fields_come_from_contact_fields_and_attributes() -> None:
    change = plan_contact(person(attributes={"city": "Utrecht"}), None, CFG, NOW)

    assert change.data is not None
    assert dict(change.data.merge_fields) == {"FNAME": "Ada", "CITY": "Utrecht"}


def test_opt_in_proof_comes_from_the_given_and_confirmed_events() -> None:
    change = plan_contact(person(), None, CFG, NOW)

    assert change.data is not None
    assert (change.data.timestamp_signup, change.data.timestamp_opt) == (
        at(0).isoformat(timespec="seconds"), at(0.1).isoformat(timespec="seconds"))
    assert change.data.ip_opt == "192.0.2.7"


def test_unchanged_live_member_needs_no_write() -> None:
    facts = person()

    change = plan_contact(facts, known("subscribed", facts), CFG, NOW)

    assert (change.action, change.category) == (Action.SETTLE, "unchanged")


def test_temporary_refusal_holds_until_retry_after() -> None:
    state = known(None, retry_after=NOW + timedelta(hours=1))

    assert plan_contact(person(), state, CFG, NOW).action is Action.HOLD
    assert plan_contact(person(), state, CFG, NOW + timedelta(hours=2)).action is Action.ADD


def test_unconfirmed_goes_pending_only_when_enabled() -> None:
    cfg = PlanConfig(**{**CFG.__dict__, "unconfirmed_as_pending": True})

    change = plan_contact(person((fact(Consent.GIVEN, 1),)), None, cfg, NOW)

    assert (change.action, change.status) == (Action.ADD, "pending")


def test_fingerprint_separates_data_and_tags() -> None:
    one = plan_contact(person(), None, CFG, NOW).data
    two = plan_contact(person(lists=()), None, CFG, NOW).data
    assert one is not None
    assert two is not None

    assert fingerprint(one)[:32] == fingerprint(two)[:32]
    assert fingerprint(one)[32:] != fingerprint(two)[32:]
