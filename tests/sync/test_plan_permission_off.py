"""The GDPR permission of a withdrawn purpose switched off on a member Mailchimp has as
unsubscribed already (or about to be: an unsubscribe it reported, not applied to the
member state yet): the permission alone, no status (I2), to the member syncd pushed, said
in words, once. Three ways lead there, each a case below: the unsubscribe Mailchimp
reported while syncd still knows the member live; a withdrawal of the only purpose while
Mailchimp has the member unsubscribed; another purpose still admitting while Mailchimp
has the member unsubscribed. Written for survivors of the mutation run
(docs/mutation.md); over the pure planner."""

from __future__ import annotations

import pytest

from syncd.consent.policy import Action as Consent
from syncd.consent.policy import ConsentFact
from syncd.esp.protocol import MemberData
from syncd.schema import LedgerChannel
from syncd.sync.plan import (
    Action,
    ContactFacts,
    KnownState,
    PlanConfig,
    decide_contact,
    plan_contact,
)
from tests.builders import at

CFG = PlanConfig(purpose="newsletter", purposes=("newsletter", "events"), merge_fields={},
                 sync_tags=False, tag_lists=(), unconfirmed_as_pending=False,
                 permissions={"pid-email": "newsletter", "pid-mail": "events"})
NOW = at(30)
CONTACT_ADDRESS = "ada@example.org"
PUSHED_ADDRESS = "ada.before@example.org"  # the member key syncd pushed, before a rename


def fact(purpose: str, action: Consent, days: float,
         source: str = "web_form") -> ConsentFact:
    return ConsentFact(purpose=purpose, action=action, occurred_at=at(days), source=source)


def confirmed(purpose: str) -> tuple[ConsentFact, ...]:
    return (fact(purpose, Consent.GIVEN, 0), fact(purpose, Consent.CONFIRMED, 0.1))


# (the contact's consent events, the member state Mailchimp has, the settled change when
# Mailchimp has the permission off already)
CASES = {
    "reported-by-mailchimp-member-still-live": (
        (*confirmed("newsletter"),
         fact("newsletter", Consent.WITHDRAWN, 2, LedgerChannel.RECONCILIATION)),
        "subscribed", "unsubscribed_at_esp"),
    "only-purpose-withdrawn-member-unsubscribed": (
        (*confirmed("newsletter"), fact("newsletter", Consent.WITHDRAWN, 2)),
        "unsubscribed", "withdrawn"),
    "other-purpose-admits-member-unsubscribed": (
        (*confirmed("events"), *confirmed("newsletter"),
         fact("newsletter", Consent.WITHDRAWN, 2)),
        "unsubscribed", "esp_unsubscribed"),
}
cases = pytest.mark.parametrize("case", sorted(CASES))


def person(case: str) -> ContactFacts:
    return ContactFacts(contact_id=7, revision=3, email=CONTACT_ADDRESS,
                        events=CASES[case][0])


def member(case: str, *, email: str | None = PUSHED_ADDRESS,
           permissions: str | None = None) -> KnownState:
    return KnownState(settled_revision=2, esp_status=CASES[case][1], esp_email=email,
                      esp_permissions=permissions)


@cases
def test_the_permission_off_is_an_update_of_that_permission_alone_without_a_status(
        case: str) -> None:
    change = plan_contact(person(case), member(case), CFG, NOW)

    assert (change.action, change.category, change.status) == (
        Action.UPDATE, "permission_off", None)
    assert (change.write_data, change.write_tags) == (True, False)
    assert change.data == MemberData(email=PUSHED_ADDRESS,
                                     marketing_permissions={"pid-email": False})


@cases
def test_the_permission_off_goes_to_the_member_syncd_pushed(case: str) -> None:
    change = plan_contact(person(case), member(case), CFG, NOW)

    assert change.data is not None
    assert change.data.email == PUSHED_ADDRESS


@cases
def test_the_permission_off_goes_to_the_contacts_address_when_syncd_pushed_none(
        case: str) -> None:
    change = plan_contact(person(case), member(case, email=None), CFG, NOW)

    assert change.data is not None
    assert change.data.email == CONTACT_ADDRESS


@cases
def test_the_permission_off_says_the_decision_and_that_the_permission_goes_off(
        case: str) -> None:
    change = plan_contact(person(case), member(case), CFG, NOW)

    decision = decide_contact(person(case), CFG, NOW)
    assert change.reason == f"{decision.reason}; its GDPR permission switched off at Mailchimp"


@cases
def test_a_permission_mailchimp_has_off_already_is_not_sent_again(case: str) -> None:
    change = plan_contact(person(case), member(case, permissions='{"pid-email":false}'),
                          CFG, NOW)

    assert (change.action, change.category) == (Action.SETTLE, CASES[case][2])
