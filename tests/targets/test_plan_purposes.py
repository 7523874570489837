"""The pure planner for a target's several purposes and for a GDPR permission switched
off at Mailchimp: any confirmed purpose admits, a withdrawn one decides only when none
admits, each permission follows its own purpose; and a permission withdrawal (the
member is still subscribed there) is sent as an unsubscribe, while an unsubscribe that
Mailchimp reported sends only the permission off (once: settled when Mailchimp has it
off)."""

from __future__ import annotations

from syncd.consent.policy import Action as Consent
from syncd.consent.policy import ConsentFact, Standing
from syncd.schema import LedgerChannel
from syncd.sync.plan import Action, ContactFacts, KnownState, PlanConfig, plan_contact
from syncd.sync.plan_member import decide_contact, permissions_of
from tests.builders import at

CFG = PlanConfig(purpose="newsletter", purposes=("newsletter", "events"), merge_fields={},
                 sync_tags=False, tag_lists=(), unconfirmed_as_pending=False,
                 permissions={"pid-email": "newsletter", "pid-mail": "events"})
ONE = PlanConfig(**{**CFG.__dict__, "purposes": ("newsletter",),
                    "permissions": {"pid-email": "newsletter"}})
NOW = at(30)
LIVE = KnownState(settled_revision=2, esp_status="subscribed", esp_email="ada@example.org")


def fact(purpose: str, action: Consent, days: float,
         source: str = "web_form") -> ConsentFact:
    return ConsentFact(purpose=purpose, action=action, occurred_at=at(days), source=source)


def confirmed(purpose: str) -> tuple[ConsentFact, ...]:
    return (fact(purpose, Consent.GIVEN, 0), fact(purpose, Consent.CONFIRMED, 0.1))


def person(*events: ConsentFact) -> ContactFacts:
    return ContactFacts(contact_id=7, revision=3, email="ada@example.org", events=events)


def test_a_confirmed_consent_for_the_second_purpose_admits() -> None:
    decision = decide_contact(person(*confirmed("events")), CFG, NOW)
    assert decision.eligible
    assert decision.standing is Standing.CONFIRMED


def test_a_withdrawn_first_purpose_decides_only_when_no_other_admits() -> None:
    withdrawn = (*confirmed("newsletter"), fact("newsletter", Consent.WITHDRAWN, 2))
    assert decide_contact(person(*withdrawn), CFG, NOW).standing is Standing.WITHDRAWN
    assert decide_contact(person(*withdrawn, *confirmed("events")), CFG, NOW).eligible


def test_each_permission_follows_its_own_purpose() -> None:
    facts = person(*confirmed("events"), *confirmed("newsletter"),
                   fact("newsletter", Consent.WITHDRAWN, 2))
    assert permissions_of(facts, CFG, NOW) == {"pid-email": False, "pid-mail": True}


def test_a_permission_withdrawal_of_the_only_purpose_unsubscribes_the_live_member() -> None:
    facts = person(*confirmed("newsletter"), fact("newsletter", Consent.WITHDRAWN, 2,
                                                  LedgerChannel.ESP_PERMISSION))
    change = plan_contact(facts, LIVE, ONE, NOW)
    assert change.action is Action.UNSUBSCRIBE
    assert change.data is not None
    assert change.data.marketing_permissions == {
        "pid-email": False}


def test_an_unsubscribe_mailchimp_reported_sends_only_its_permission_off() -> None:
    facts = person(*confirmed("newsletter"), fact("newsletter", Consent.WITHDRAWN, 2,
                                                  LedgerChannel.RECONCILIATION))
    change = plan_contact(facts, LIVE, ONE, NOW)
    assert (change.action, change.status) == (Action.UPDATE, None)
    assert change.data is not None
    assert change.data.marketing_permissions == {"pid-email": False}


def test_an_unsubscribe_mailchimp_reported_with_the_permission_off_is_settled() -> None:
    facts = person(*confirmed("newsletter"), fact("newsletter", Consent.WITHDRAWN, 2,
                                                  LedgerChannel.RECONCILIATION))
    off = KnownState(settled_revision=2, esp_status="subscribed",
                     esp_email="ada@example.org", esp_permissions='{"pid-email":false}')
    assert plan_contact(facts, off, ONE, NOW).action is Action.SETTLE
    assert plan_contact(facts, LIVE, ONE.__class__(**{**ONE.__dict__, "permissions": {}}),
                        NOW).action is Action.SETTLE


def test_a_member_unsubscribed_at_mailchimp_gets_no_status_and_no_other_permission() -> None:
    facts = person(*confirmed("events"), *confirmed("newsletter"),
                   fact("newsletter", Consent.WITHDRAWN, 2))
    gone = KnownState(settled_revision=2, esp_status="unsubscribed",
                      esp_email="ada@example.org", esp_permissions='{"pid-email":true}')
    change = plan_contact(facts, gone, CFG, NOW)
    assert (change.action, change.status) == (Action.UPDATE, None)
    assert change.data is not None
    assert dict(change.data.marketing_permissions) == {"pid-email": False}


def test_a_permission_withdrawal_with_another_purpose_admitting_updates_the_member() -> None:
    facts = person(*confirmed("events"), *confirmed("newsletter"),
                   fact("newsletter", Consent.WITHDRAWN, 2, LedgerChannel.ESP_PERMISSION))
    pushed = plan_contact(person(*confirmed("events"), *confirmed("newsletter")), None,
                          CFG, NOW)
    known = KnownState(settled_revision=2, esp_status="subscribed",
                       esp_email="ada@example.org", fingerprint=pushed.fingerprint)
    change = plan_contact(facts, known, CFG, NOW)
    assert change.action is Action.UPDATE
    assert change.data is not None
    assert change.data.marketing_permissions == {
        "pid-email": False, "pid-mail": True}


def test_an_unconfirmed_first_purpose_is_the_decision_when_the_target_sends_pending() -> None:
    # Rule 3: the first purpose's fresh sign-up may go as `pending` (Mailchimp mails the
    # confirmation); another purpose withdrawn earlier does not take that away. Without
    # pending, the withdrawn purpose decides (a live member leaves).
    facts = person(*confirmed("events"), fact("events", Consent.WITHDRAWN, 2),
                   fact("newsletter", Consent.GIVEN, 3))
    pending = PlanConfig(**{**CFG.__dict__, "unconfirmed_as_pending": True})

    assert decide_contact(facts, pending, NOW).standing is Standing.UNCONFIRMED
    assert decide_contact(facts, CFG, NOW).standing is Standing.WITHDRAWN
