"""The planner's rules that the table of test_plan.py leaves open: the whole change each
case makes (the label metrics count, the reason the operator reads, the fingerprint the
run settles on), which member an unsubscribe addresses and since when, what a member
that may be live gets, when a re-consent is sent, and what the member data carries.
Written for survivors of the mutation run (docs/mutation.md); one rule per test, over the
pure planner."""

from __future__ import annotations

from datetime import timedelta

from syncd.config import Settings
from syncd.config.targets import TargetSettings
from syncd.consent.policy import Action as Consent
from syncd.consent.policy import ConsentFact, SuppressionFact
from syncd.esp.protocol import MemberData
from syncd.sync.plan import (
    Action,
    Change,
    ContactFacts,
    KnownState,
    PlanConfig,
    decide_contact,
    fingerprint,
    plan_contact,
)
from tests.builders import at
from tests.conftest import TEST_LISTS

CFG = PlanConfig(purpose="newsletter", merge_fields={"first_name": "FNAME", "city": "CITY"},
                 sync_tags=True, tag_lists=("newsletter-en", "newsletter-nl"),
                 unconfirmed_as_pending=False)
PENDING_CFG = PlanConfig(**{**CFG.__dict__, "unconfirmed_as_pending": True})
UNTAGGED_CFG = PlanConfig(**{**CFG.__dict__, "sync_tags": False})
NOW = at(30)


def fact(action: Consent, days: float, *, purpose: str = "newsletter",
         source: str = "web_form", ip: str = "192.0.2.7") -> ConsentFact:
    return ConsentFact(purpose=purpose, action=action, occurred_at=at(days), source=source,
                       ip=ip)


CONFIRMED = (fact(Consent.GIVEN, 0), fact(Consent.CONFIRMED, 0.1))
WITHDRAWN = (*CONFIRMED, fact(Consent.WITHDRAWN, 2))
RECONSENT = (*WITHDRAWN, fact(Consent.GIVEN, 5), fact(Consent.CONFIRMED, 5.1))
UNCONFIRMED = (fact(Consent.GIVEN, 1),)


def person(events: tuple[ConsentFact, ...] = CONFIRMED, **fields: object) -> ContactFacts:
    values: dict[str, object] = {"contact_id": 7, "revision": 3, "email": "ada@example.org",
                                 "first_name": "Ada", "events": events,
                                 "lists": ("newsletter-nl", "offers")}
    values.update(fields)
    return ContactFacts(**values)  # type: ignore[arg-type]


def state(status: str | None, pushed: ContactFacts | None = None, cfg: PlanConfig = CFG,
          **fields: object) -> KnownState:
    """What the ESP confirmed: `status`, and the fingerprint of `pushed` as it was sent."""
    values: dict[str, object] = {"settled_revision": 2, "esp_status": status,
                                 "esp_email": "ada@example.org"}
    if pushed is not None:
        values["fingerprint"] = plan_contact(pushed, None, cfg, NOW).fingerprint
    values.update(fields)
    return KnownState(**values)  # type: ignore[arg-type]


def data_of(facts: ContactFacts, cfg: PlanConfig = CFG) -> MemberData:
    data = plan_contact(facts, None, cfg, NOW).data
    assert data is not None
    return data


def reason_of(facts: ContactFacts, cfg: PlanConfig = CFG) -> str:
    return decide_contact(facts, cfg, NOW).reason


# The whole change of each outcome.

def test_a_contact_with_an_unapplied_unsubscribe_webhook_is_held_and_told_why() -> None:
    known = state("subscribed")

    change = plan_contact(person(inbox_block=True), known, CFG, NOW)

    assert change == Change(
        contact_id=7, revision=3, known=known, action=Action.HOLD, category="webhook_pending",
        reason="an unsubscribe or cleaned webhook for this address is not applied yet; not "
               "pushed until it is")


def test_an_address_mailchimp_refused_for_now_is_held_until_its_retry_moment() -> None:
    known = state(None, retry_after=NOW + timedelta(hours=1))

    change = plan_contact(person(), known, CFG, NOW)

    assert change == Change(
        contact_id=7, revision=3, known=known, action=Action.HOLD, category="retry_later",
        reason="Mailchimp refused the address for now (too many recent sign-ups); retried "
               "after 2026-03-31T10:00:00+00:00")


def test_an_address_mailchimp_refused_is_tried_again_at_its_retry_moment() -> None:
    change = plan_contact(person(), state(None, retry_after=NOW), CFG, NOW)

    assert change.action is Action.ADD


def test_a_new_confirmed_contact_is_added_subscribed_with_its_data_and_tags() -> None:
    facts = person()
    data = data_of(facts)

    change = plan_contact(facts, None, CFG, NOW)

    assert change == Change(
        contact_id=7, revision=3, known=None, action=Action.ADD, category="add",
        reason=reason_of(facts), data=data, status="subscribed", fingerprint=fingerprint(data),
        write_data=True, write_tags=True)


def test_an_add_after_one_sent_but_never_confirmed_carries_the_member_state() -> None:
    # The push adopts its own earlier add (it may have landed) from the attempt kept there.
    known = state(None, attempt_fingerprint="f" * 64)

    change = plan_contact(person(), known, CFG, NOW)

    assert (change.action, change.known) == (Action.ADD, known)


def test_a_new_contact_without_tags_is_added_without_a_tags_call() -> None:
    change = plan_contact(person(lists=("offers",)), None, CFG, NOW)

    assert (change.action, change.write_data, change.write_tags) == (Action.ADD, True, False)


def test_a_data_change_of_a_live_member_is_an_update_of_the_data_alone() -> None:
    before, after = person(), person(first_name="Adaline")
    known = state("subscribed", before)
    data = data_of(after)

    change = plan_contact(after, known, CFG, NOW)

    assert change == Change(
        contact_id=7, revision=3, known=known, action=Action.UPDATE, category="update",
        reason=reason_of(after), data=data, status="subscribed", fingerprint=fingerprint(data),
        write_data=True, write_tags=False, inactive_tags=("newsletter-en",))


def test_an_unchanged_live_member_is_settled_on_its_fingerprint() -> None:
    facts = person()
    known = state("subscribed", facts)

    change = plan_contact(facts, known, CFG, NOW)

    assert change == Change(
        contact_id=7, revision=3, known=known, action=Action.SETTLE, category="unchanged",
        reason=reason_of(facts), fingerprint=fingerprint(data_of(facts)))


def test_a_withdrawal_unsubscribes_the_live_member_since_the_withdrawal() -> None:
    facts = person(WITHDRAWN)
    known = state("subscribed")

    change = plan_contact(facts, known, CFG, NOW)

    assert change == Change(
        contact_id=7, revision=3, known=known, action=Action.UNSUBSCRIBE,
        category="unsubscribe", reason=reason_of(facts), status="unsubscribed",
        data=MemberData(email="ada@example.org"), withdrawn_at=at(2))


def test_a_withdrawal_mailchimp_reported_settles_as_unsubscribed_without_a_call() -> None:
    facts = person((*CONFIRMED, fact(Consent.WITHDRAWN, 2, source="esp_webhook")))
    known = state("subscribed")

    change = plan_contact(facts, known, CFG, NOW)

    assert change == Change(
        contact_id=7, revision=3, known=known, action=Action.SETTLE,
        category="unsubscribed_at_esp",
        reason=f"{reason_of(facts)}; already unsubscribed at Mailchimp",
        esp_status_after="unsubscribed")


def test_a_contact_never_pushed_is_settled_under_its_consent_standing() -> None:
    facts = person(UNCONFIRMED)

    change = plan_contact(facts, None, CFG, NOW)

    assert change == Change(contact_id=7, revision=3, known=None, action=Action.SETTLE,
                            category="unconfirmed", reason=reason_of(facts))


def test_a_customer_without_consent_is_settled_as_soft_opt_in_only() -> None:
    change = plan_contact(person((), is_customer=True), None, CFG, NOW)

    assert change.category == "soft_opt_in_only"


def test_a_member_cleaned_at_mailchimp_is_settled_and_never_subscribed_again() -> None:
    facts = person()
    known = state("cleaned", facts)

    change = plan_contact(facts, known, CFG, NOW)

    assert change == Change(
        contact_id=7, revision=3, known=known, action=Action.SETTLE, category="esp_cleaned",
        reason="member is cleaned at Mailchimp; syncd never subscribes it again (only a new "
               "confirmed consent, sent as pending)")


def test_a_re_consent_of_an_unsubscribed_member_is_sent_once_as_pending_with_its_data(
        ) -> None:
    facts = person(RECONSENT)
    known = state("unsubscribed", facts)
    data = data_of(facts)

    change = plan_contact(facts, known, CFG, NOW)

    assert change == Change(
        contact_id=7, revision=3, known=known, action=Action.RECONSENT, category="reconsent",
        reason=reason_of(facts), data=data, status="pending", fingerprint=fingerprint(data),
        write_data=True, write_tags=False, inactive_tags=("newsletter-en",))


def test_a_re_consent_with_changed_lists_also_writes_the_tags() -> None:
    facts = person(RECONSENT)
    known = state("unsubscribed", person(RECONSENT, lists=()))

    change = plan_contact(facts, known, CFG, NOW)

    assert (change.action, change.write_tags) == (Action.RECONSENT, True)


# Unconfirmed contacts pushed as pending (sync_push_unconfirmed_as_pending).

def test_an_unchanged_pending_unconfirmed_member_is_settled_on_its_fingerprint() -> None:
    facts = person(UNCONFIRMED)
    known = state("pending", facts, PENDING_CFG)

    change = plan_contact(facts, known, PENDING_CFG, NOW)

    assert change == Change(
        contact_id=7, revision=3, known=known, action=Action.SETTLE, category="unchanged",
        reason=reason_of(facts, PENDING_CFG),
        fingerprint=fingerprint(data_of(facts, PENDING_CFG)))


def test_a_pending_unconfirmed_member_whose_data_changed_is_updated() -> None:
    after = person(UNCONFIRMED, first_name="Adaline")
    known = state("pending", person(UNCONFIRMED), PENDING_CFG)

    change = plan_contact(after, known, PENDING_CFG, NOW)

    assert (change.action, change.write_data, change.write_tags) == (Action.UPDATE, True,
                                                                     False)


# Which member an unsubscribe addresses, and whether it may be live.

def test_an_unsubscribe_addresses_the_member_under_the_address_syncd_pushed() -> None:
    # The address changed in the CRM since the push: Mailchimp knows the old one.
    facts = person(WITHDRAWN, email="ada.new@example.org")

    change = plan_contact(facts, state("subscribed"), CFG, NOW)

    assert change.data == MemberData(email="ada@example.org")


def test_an_unsubscribe_without_a_pushed_address_addresses_the_contact_address() -> None:
    known = state(None, esp_email=None, attempt_fingerprint="f" * 64)

    change = plan_contact(person(WITHDRAWN), known, CFG, NOW)

    assert (change.action, change.data) == (Action.UNSUBSCRIBE,
                                            MemberData(email="ada@example.org"))


def test_a_withdrawal_after_an_add_sent_but_never_confirmed_unsubscribes() -> None:
    # The add may have landed (timeout, crash): the member may be live.
    known = state(None, attempt_fingerprint="f" * 64)

    assert plan_contact(person(WITHDRAWN), known, CFG, NOW).action is Action.UNSUBSCRIBE


def test_a_withdrawal_after_a_re_consent_sent_but_never_confirmed_unsubscribes() -> None:
    # The `pending` may have landed (timeout, crash) on the member syncd knows as
    # unsubscribed: left pending, a click in Mailchimp's mail would subscribe them.
    withdrawn_again = (*RECONSENT, fact(Consent.WITHDRAWN, 8))
    known = state("unsubscribed", attempt_fingerprint="f" * 64)

    assert plan_contact(person(withdrawn_again), known, CFG, NOW).action is Action.UNSUBSCRIBE
    assert plan_contact(person(withdrawn_again), state("unsubscribed"), CFG,
                        NOW).action is Action.SETTLE


def test_a_withdrawal_of_a_contact_created_after_the_last_pull_unsubscribes() -> None:
    # Mailchimp may have had the address since before syncd.
    facts = person(WITHDRAWN, unknown_to_pull=True)

    change = plan_contact(facts, None, CFG, NOW)

    assert (change.action, change.data) == (Action.UNSUBSCRIBE,
                                            MemberData(email="ada@example.org"))


def test_a_withdrawal_of_a_contact_never_sent_to_mailchimp_needs_no_call() -> None:
    change = plan_contact(person(WITHDRAWN), state(None), CFG, NOW)

    assert (change.action, change.category) == (Action.SETTLE, "withdrawn")


def test_a_suppression_alone_unsubscribes_the_live_member_since_the_suppression() -> None:
    facts = person(suppressions=(SuppressionFact("*", "erasure", at(4)),))

    change = plan_contact(facts, state("subscribed"), CFG, NOW)

    assert (change.action, change.withdrawn_at) == (Action.UNSUBSCRIBE, at(4))


def test_the_latest_withdrawal_decides_whether_mailchimp_reported_it() -> None:
    # Mailchimp reported an earlier withdrawal; the latest was made in the CRM.
    facts = person((*CONFIRMED, fact(Consent.WITHDRAWN, 2, source="esp_webhook"),
                    fact(Consent.WITHDRAWN, 3, source="cli")))

    assert plan_contact(facts, state("subscribed"), CFG, NOW).action is Action.UNSUBSCRIBE


def test_a_withdrawal_of_another_purpose_reported_by_mailchimp_is_not_this_ones() -> None:
    facts = person((*CONFIRMED, fact(Consent.WITHDRAWN, 2, source="cli"),
                    fact(Consent.WITHDRAWN, 3, purpose="offers", source="esp_webhook")))

    assert plan_contact(facts, state("subscribed"), CFG, NOW).action is Action.UNSUBSCRIBE


# Since when the person is blocked (the withdrawal-to-Mailchimp latency metric).

def test_the_unsubscribe_dates_from_the_latest_block_of_the_purpose() -> None:
    facts = person(WITHDRAWN, suppressions=(SuppressionFact("newsletter", "unsubscribe",
                                                            at(3)),))

    assert plan_contact(facts, state("subscribed"), CFG, NOW).withdrawn_at == at(3)


def test_a_later_withdrawal_or_suppression_of_another_purpose_does_not_date_it() -> None:
    facts = person((*WITHDRAWN, fact(Consent.WITHDRAWN, 4, purpose="offers")),
                   suppressions=(SuppressionFact("offers", "unsubscribe", at(5)),))

    assert plan_contact(facts, state("subscribed"), CFG, NOW).withdrawn_at == at(2)


def test_a_sign_up_after_the_withdrawal_does_not_date_the_unsubscribe() -> None:
    facts = person((*WITHDRAWN, fact(Consent.GIVEN, 4)))

    assert plan_contact(facts, state("subscribed"), CFG, NOW).withdrawn_at == at(2)


# A member Mailchimp has as unsubscribed, from before syncd knew the person.

def test_a_confirmation_newer_than_mailchimps_unsubscribe_is_sent_as_a_re_consent() -> None:
    facts = person()
    known = state("unsubscribed", facts, esp_last_changed=at(0.05))

    assert plan_contact(facts, known, CFG, NOW).action is Action.RECONSENT


def test_a_confirmation_at_the_moment_of_mailchimps_unsubscribe_is_no_re_consent() -> None:
    facts = person()
    known = state("unsubscribed", facts, esp_last_changed=at(0.1))

    assert plan_contact(facts, known, CFG, NOW).category == "esp_unsubscribed"


def test_an_unsubscribed_member_without_a_known_last_change_gets_no_re_consent() -> None:
    facts = person()

    assert plan_contact(facts, state("unsubscribed", facts), CFG, NOW).action is Action.SETTLE


# What the member data carries.

def test_the_member_data_carries_the_sign_up_and_the_confirmation_separately() -> None:
    facts = person((fact(Consent.GIVEN, 0, ip="192.0.2.1"),
                    fact(Consent.CONFIRMED, 0.1, ip="192.0.2.2")))

    assert data_of(facts) == MemberData(
        email="ada@example.org", merge_fields={"FNAME": "Ada"}, tags=("newsletter-nl",),
        ip_signup="192.0.2.1", timestamp_signup="2026-03-01T09:00:00+00:00",
        ip_opt="192.0.2.2", timestamp_opt="2026-03-01T11:24:00+00:00")


def test_the_last_name_is_a_contact_field_mapped_to_its_merge_tag() -> None:
    cfg = PlanConfig(**{**CFG.__dict__, "merge_fields": {"last_name": "LNAME"}})

    assert data_of(person(last_name="Lovelace"), cfg).merge_fields == {"LNAME": "Lovelace"}


def test_a_missing_or_empty_field_sends_no_merge_field() -> None:
    facts = person(first_name=None, attributes={"city": ""})

    assert data_of(facts).merge_fields == {}


def test_without_tag_sync_no_tag_is_sent_or_cleared() -> None:
    before, after = person(), person(first_name="Adaline")

    change = plan_contact(after, state("subscribed", before, UNTAGGED_CFG), UNTAGGED_CFG, NOW)

    assert change.data is not None
    assert (change.data.tags, change.write_tags, change.inactive_tags) == ((), False, ())


def test_the_plan_configuration_is_read_from_the_settings() -> None:
    settings = Settings(lists=TEST_LISTS, sync_purpose="offers",
                        mailchimp_merge_fields={"last_name": "LNAME"},
                        mailchimp_sync_tags=False, sync_push_unconfirmed_as_pending=True,
                        mailchimp_audience_id="f1243a3b12")

    assert PlanConfig.for_target(settings.target(), settings) == PlanConfig(
        purpose="offers", merge_fields={"last_name": "LNAME"}, sync_tags=False,
        tag_lists=("offers",), unconfirmed_as_pending=True)


def test_a_target_of_several_purposes_plans_with_each_of_them_admitting() -> None:
    settings = Settings(lists=TEST_LISTS, mailchimp_audience_id="f1243a3b12")
    target = TargetSettings(name="members", audience_id="0ffe7512ab",
                            purposes=("newsletter", "events"))

    cfg = PlanConfig.for_target(target, settings)

    assert (cfg.purpose, cfg.purposes, cfg.admitting) == (
        "newsletter", ("newsletter", "events"), ("newsletter", "events"))
    assert cfg.tag_lists == ("events", "newsletter-en", "newsletter-nl")


def test_a_soft_opt_in_target_plans_with_its_basis_period_and_category_tags() -> None:
    settings = Settings(lists=TEST_LISTS, mailchimp_audience_id="f1243a3b12")
    target = TargetSettings(name="customers", audience_id="0ffe7512ab", purposes=("offers",),
                            basis="soft_opt_in", soft_opt_in_months=12, category_tags=False)

    cfg = PlanConfig.for_target(target, settings)

    assert (cfg.basis, cfg.soft_opt_in_months, cfg.category_tags) == (
        "soft_opt_in", 12, False)
