"""The unsubscribe purge (webhooks/purge.py, the Core SQL hot path) over HTTP: what it
records for accountability (rule 4: the audit trail of a withdrawal), how it marks the
contact for the next sync, which lists a newer confirmation keeps (I6), and that the
same withdrawal seen again changes nothing (I5). Each test was written for a mutant of
purge.py that the suite did not notice (docs/mutation.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import AuditEntry, Contact
from tests.builders import add_contact, confirmed
from tests.conftest import fixture_body
from tests.webhooks.conftest import Served
from tests.webhooks.snapshot import person, suppressions

ADA = "ada.lovelace@example.com"
FIRED = datetime(2026, 3, 4, 13, 10, 40, tzinfo=UTC)  # fired_at of unsubscribe.form
ALAN = "alan.turing@example.com"  # the address of unsubscribe-abuse.form
ABUSE_FIRED = datetime(2026, 3, 6, 8, 0, 1, tzinfo=UTC)


def _audit(ctx: AppContext, contact_id: int, action: str) -> list[dict[str, Any]]:
    with transaction(ctx.sessions) as session:
        return [entry.details for entry in session.scalars(
            select(AuditEntry).where(AuditEntry.contact_id == contact_id,
                                     AuditEntry.action == action).order_by(AuditEntry.id))]


def _revision(ctx: AppContext, contact_id: int) -> int:
    with transaction(ctx.sessions) as session:
        return session.get_one(Contact, contact_id).revision


def _fired_later(minutes: float, fixture: str = "unsubscribe.form",
                 fired: datetime = FIRED) -> bytes:
    """The fixture (fired at `fired`) as fired `minutes` later: another event (dedupe
    key), the same withdrawal when within apply.SAME_WITHDRAWAL_WINDOW."""
    form = "%Y-%m-%d+%H%%3A%M%%3A%S"
    later = (fired + timedelta(minutes=minutes)).strftime(form)
    return fixture_body(fixture).replace(f"fired_at={fired.strftime(form)}".encode(),
                                         f"fired_at={later}".encode())


def test_an_unsubscribe_audits_the_withdrawal_with_purpose_channel_and_moment(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])

    served.deliver("unsubscribe.form")

    assert _audit(app_context, contact_id, "consent_withdrawn") == [
        {"purpose": "newsletter", "source": "esp_webhook",
         "occurred_at": FIRED.isoformat()}]


def test_an_unsubscribe_audits_the_lists_it_removed_once_per_purpose(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed(),
                             lists=["newsletter-nl", "newsletter-en", "offers"])

    served.deliver("unsubscribe.form")

    [removed] = _audit(app_context, contact_id, "lists_removed")
    assert removed["lists"] == ["newsletter-en", "newsletter-nl"]  # not offers: rule 1
    assert removed["reason"].startswith("unsubscribe")


def test_an_unsubscribe_bumps_the_revision_once_per_change_it_made(
        served: Served, app_context: AppContext) -> None:
    # The ledger entry, the list removal and the suppression: three changes, as the ORM
    # path counts them (store.touch per change); the sync looks again at the contact.
    contact_id = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    before = _revision(app_context, contact_id)

    served.deliver("unsubscribe.form")

    assert _revision(app_context, contact_id) == before + 3


def test_a_withdrawal_that_only_adds_to_the_ledger_still_makes_the_contact_due(
        served: Served, app_context: AppContext) -> None:
    # No list left to leave and a newer suppression already there (a later unsubscribe
    # arrived first): the older withdrawal's ledger entry alone must still bring the
    # contact to the next sync (I11), never push its revision back. (On PostgreSQL the
    # bump is counted before the write, so it may move by more than one: order, not count.)
    contact_id = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.post(_fired_later(60 * 24))
    before = _revision(app_context, contact_id)

    answer = served.deliver("unsubscribe.form").text.strip()

    assert (answer, len(person(app_context, ADA).withdrawals)) == ("applied", 2)
    assert _revision(app_context, contact_id) > before


def test_the_same_withdrawal_seen_again_within_the_window_changes_nothing(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")
    once = (person(app_context, ADA), _revision(app_context, contact_id))

    answer = served.post(_fired_later(2)).text.strip()

    assert answer == "ignored"
    assert (person(app_context, ADA), _revision(app_context, contact_id)) == once


def test_a_newer_withdrawal_does_not_keep_the_lists_an_older_unsubscribe_removes(
        served: Served, app_context: AppContext) -> None:
    # I6: only a newer *confirmed* consent beats an older withdrawal.
    add_contact(app_context, ADA, lists=["newsletter-nl"], events=[
        *confirmed(), ("newsletter", Action.WITHDRAWN, FIRED + timedelta(minutes=1))])

    served.deliver("unsubscribe.form")

    assert person(app_context, ADA).lists == ()


def test_a_confirmation_at_the_moment_of_the_unsubscribe_does_not_keep_the_lists(
        served: Served, app_context: AppContext) -> None:
    # As in the policy: a block at the same moment as a confirmation wins.
    add_contact(app_context, ADA, lists=["newsletter-nl"], events=[
        ("newsletter", Action.GIVEN, FIRED - timedelta(hours=1)),
        ("newsletter", Action.CONFIRMED, FIRED)])

    served.deliver("unsubscribe.form")

    assert person(app_context, ADA).lists == ()


def test_a_confirmation_after_the_unsubscribe_keeps_the_lists_of_its_purpose(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, lists=["newsletter-nl"], events=[
        ("newsletter", Action.GIVEN, FIRED - timedelta(hours=1)),
        ("newsletter", Action.CONFIRMED, FIRED + timedelta(minutes=1))])

    served.deliver("unsubscribe.form")

    assert person(app_context, ADA).lists == ("newsletter-nl",)


def test_an_unsubscribe_audits_the_suppression_it_added_for_the_contact(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])

    served.deliver("unsubscribe.form")

    assert _audit(app_context, contact_id, "suppressed") == [
        {"purpose": "newsletter", "reason": "unsubscribe"}]


def test_a_member_deleted_at_mailchimp_is_audited_with_the_channel(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, "edsger.dijkstra@example.com", events=confirmed(),
                             lists=["newsletter-nl"])

    served.deliver("unsubscribe-delete.form")

    assert _audit(app_context, contact_id, "esp_member_deleted") == [
        {"channel": "esp_webhook"}]


def test_a_later_unsubscribe_moves_the_suppression_to_its_moment(
        served: Served, app_context: AppContext) -> None:
    # Rule 6: the suppression holds the newest blocking moment, so a consent dated
    # between the two unsubscribes cannot bring the person back.
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")

    served.post(_fired_later(60 * 24))

    assert suppressions(app_context, ADA)["newsletter"][1] == FIRED + timedelta(days=1)


def test_a_list_re_added_since_is_removed_again_by_the_same_withdrawal_seen_again(
        served: Served, app_context: AppContext) -> None:
    # The webhook and the reconciliation pull report one unsubscribe: the second report
    # writes no second withdrawal, but the purge still holds (rule 5).
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")
    add_contact(app_context, ADA, lists=["newsletter-nl"])  # a stale CRM import re-adds it

    answer = served.post(_fired_later(2)).text.strip()

    assert (answer, person(app_context, ADA).lists) == ("applied", ())
    assert len(person(app_context, ADA).withdrawals) == 1


def test_a_confirmation_between_two_unsubscribes_makes_the_second_a_new_withdrawal(
        served: Served, app_context: AppContext) -> None:
    # Within the window, but the person re-consented in between: two withdrawals.
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")
    add_contact(app_context, ADA, events=[
        ("newsletter", Action.CONFIRMED, FIRED + timedelta(minutes=1))])

    served.post(_fired_later(2))

    assert len(person(app_context, ADA).withdrawals) == 2


def test_a_confirmation_at_the_moment_of_the_second_unsubscribe_is_between_them(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")
    add_contact(app_context, ADA, events=[
        ("newsletter", Action.CONFIRMED, FIRED + timedelta(minutes=2))])

    served.post(_fired_later(2))

    assert len(person(app_context, ADA).withdrawals) == 2


def test_a_confirmation_at_the_moment_of_the_first_unsubscribe_is_not_between_them(
        served: Served, app_context: AppContext) -> None:
    # It lost to that unsubscribe (a block at the same moment wins): no re-consent.
    add_contact(app_context, ADA, events=[*confirmed(), ("newsletter", Action.CONFIRMED,
                                                         FIRED)], lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")

    served.post(_fired_later(2))

    assert len(person(app_context, ADA).withdrawals) == 1


def test_a_confirmation_of_another_purpose_between_them_changes_nothing(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")
    add_contact(app_context, ADA, events=[
        ("offers", Action.CONFIRMED, FIRED + timedelta(minutes=1))])

    served.post(_fired_later(2))

    assert len(person(app_context, ADA).withdrawals) == 1


def _abuse_later(minutes: float) -> bytes:
    return _fired_later(minutes, "unsubscribe-abuse.form", ABUSE_FIRED)


def test_an_abuse_complaint_again_after_a_confirmation_of_another_purpose_moves_the_suppression(
        served: Served, app_context: AppContext) -> None:
    # The complaint objects to every purpose: the offers consent confirmed after the
    # first one must lose to the second (rule 6), though it is within the window.
    add_contact(app_context, ALAN, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe-abuse.form")
    add_contact(app_context, ALAN, events=[
        ("offers", Action.CONFIRMED, ABUSE_FIRED + timedelta(minutes=1))])

    served.post(_abuse_later(2))

    assert suppressions(app_context, ALAN)["*"] == ("abuse", ABUSE_FIRED + timedelta(minutes=2))
    assert len(person(app_context, ALAN).withdrawals) == 1  # newsletter's, not twice


def test_an_abuse_complaint_after_a_later_unsubscribe_moves_the_suppression_past_a_consent(
        served: Served, app_context: AppContext) -> None:
    # The complaint, an offers consent, an unsubscribe, the complaint again: the second
    # complaint is "the same withdrawal" as the unsubscribe (one purpose, nothing
    # confirmed between them), yet the consent confirmed after the first complaint loses
    # to it.
    add_contact(app_context, ALAN, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe-abuse.form")
    add_contact(app_context, ALAN, events=[
        ("offers", Action.CONFIRMED, ABUSE_FIRED + timedelta(minutes=1))])
    served.post(_abuse_later(2).replace(b"reason%5D=abuse", b"reason%5D=manual"))

    served.post(_abuse_later(3))

    assert suppressions(app_context, ALAN)["*"] == ("abuse", ABUSE_FIRED + timedelta(minutes=3))


def test_the_same_abuse_complaint_reported_again_writes_no_second_withdrawal(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ALAN, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe-abuse.form")

    served.post(_abuse_later(2))

    assert len(person(app_context, ALAN).withdrawals) == 1


def test_the_later_report_arriving_first_is_the_same_withdrawal(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.post(_fired_later(2))

    answer = served.deliver("unsubscribe.form").text.strip()

    assert (answer, len(person(app_context, ADA).withdrawals)) == ("ignored", 1)


def test_reports_exactly_the_window_apart_are_the_same_withdrawal(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")

    served.post(_fired_later(5))

    assert len(person(app_context, ADA).withdrawals) == 1


def test_the_later_report_exactly_the_window_apart_arriving_first_is_the_same(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.post(_fired_later(5))

    served.deliver("unsubscribe.form")

    assert len(person(app_context, ADA).withdrawals) == 1


def test_a_confirmation_just_before_the_unsubscribe_is_not_taken_for_a_withdrawal(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, lists=["newsletter-nl"], events=[
        ("newsletter", Action.GIVEN, FIRED - timedelta(minutes=3)),
        ("newsletter", Action.CONFIRMED, FIRED - timedelta(minutes=1))])

    served.deliver("unsubscribe.form")

    assert len(person(app_context, ADA).withdrawals) == 1
    assert person(app_context, ADA).lists == ()


def test_a_withdrawal_of_another_purpose_just_before_is_not_the_same_withdrawal(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, lists=["newsletter-nl"], events=[
        *confirmed(), ("offers", Action.WITHDRAWN, FIRED - timedelta(minutes=1))])

    served.deliver("unsubscribe.form")

    assert len(person(app_context, ADA).withdrawals) == 1


def test_an_other_event_read_first_does_not_stop_the_search_for_the_same_withdrawal(
        served: Served, app_context: AppContext) -> None:
    # The recent events come in ledger order: an offers confirmation, then the report
    # this one repeats.
    add_contact(app_context, ADA, lists=["newsletter-nl"], events=[
        *confirmed(), ("offers", Action.CONFIRMED, FIRED - timedelta(minutes=1))])
    served.deliver("unsubscribe.form")

    served.post(_fired_later(2))

    assert len(person(app_context, ADA).withdrawals) == 1


def test_a_withdrawal_outside_the_window_read_first_does_not_stop_the_search(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.post(_fired_later(60 * 24))  # a later unsubscribe, arrived first
    served.post(_fired_later(2))

    served.deliver("unsubscribe.form")  # the same as the one 2 minutes later

    assert len(person(app_context, ADA).withdrawals) == 2
