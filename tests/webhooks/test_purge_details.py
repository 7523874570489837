"""Details of the withdrawal (webhooks/purge.py) over HTTP through the real endpoint, each
written for a mutant of purge.py the suite did not notice (docs/mutation.md): the
person's record (Art. 15, syncd.crm.subject) reads the withdrawal first, then what it
did, in the order it did it (the record orders the audit by time, then by entry: the
withdrawal's own entries carry the one moment the purge took, the suppression's the
moment it was written); the reason recorded when Mailchimp gives none; the reason a
suppression for an abuse complaint keeps; a withdrawal reported twice (webhook and
reconciliation pull) for an unknown address, and for the old address of a renamed
contact, is the same withdrawal; an unknown address suppressed from the moment Mailchimp
fired the unsubscribe; every address the person ever had suppressed (I12); the reason of a
deletion at Mailchimp kept to the ledger's 200 characters; an unsubscribe that is no
deletion records none; each purpose of a target with several suppressed; an unsubscribe
that only adds the suppression is applied; the member state learns `unsubscribed` (or
`cleaned` for an abuse complaint reported as cleaned, `archived` for a deletion); the log of
one already in effect (and of one applied) names the contact; one already in effect is
ignored saying so."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

from sqlalchemy import select

from syncd.clock import utcnow
from syncd.config.targets import TargetSettings
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm.subject import gather
from syncd.db import transaction
from syncd.schema import PushState
from syncd.webhooks.inbox import receive
from syncd.webhooks.mailchimp_form import parse_body
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID, fixture_body, make_settings, opened
from tests.webhooks.conftest import Served, inbox_rows, stored_log_lines
from tests.webhooks.snapshot import person, suppressions

ADA = "ada.lovelace@example.com"  # the address of unsubscribe.form
EDSGER = "edsger.dijkstra@example.com"  # the address of unsubscribe-delete.form
ALAN = "alan.turing@example.com"  # the address of unsubscribe-abuse.form
KING = "ada.king@example.org"
UNSUBSCRIBED_AT = datetime(2026, 3, 4, 13, 10, 40, tzinfo=UTC)  # unsubscribe.form's fired_at


def _subscribed_at_mailchimp(ctx: AppContext, address: str) -> None:
    """A confirmed contact on a list, pushed and known to Mailchimp as subscribed."""
    contact_id = add_contact(ctx, address, events=confirmed(), lists=["newsletter-nl"])
    with transaction(ctx.sessions) as session:
        session.add(PushState(contact_id=contact_id, audience_id=TEST_AUDIENCE_ID,
                              settled_revision=1, esp_status="subscribed", esp_email=address,
                              updated_at=utcnow()))


def _reconciled(ctx: AppContext, body: bytes) -> str:
    """The same event as the reconciliation pull reports it: another inbox event."""
    return receive(ctx.sessions, parse_body(body), body.decode(), settings=ctx.settings,
                   keyring=ctx.keyring, source="reconciliation").status


def test_a_deletion_at_mailchimp_is_recorded_as_the_withdrawal_then_its_effects_in_order(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, EDSGER, events=confirmed(), lists=["newsletter-nl"])

    served.deliver("unsubscribe-delete.form")

    with transaction(app_context.sessions) as session:
        record = gather(session, app_context.keyring, EDSGER)
        actions = [entry.action for entry in record.audit if entry.actor == "esp"]
    assert actions == ["consent_withdrawn", "lists_removed", "esp_member_deleted",
                       "suppressed"]


def test_an_unsubscribe_without_a_reason_is_recorded_as_an_unsubscribe(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])

    served.post(fixture_body("unsubscribe.form").replace(b"&data%5Breason%5D=manual", b""))

    assert [reason for _, _, reason in person(app_context, ADA).withdrawals] == [
        "unsubscribe"]


def test_an_abuse_complaint_suppresses_every_purpose_for_the_reason_abuse(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ALAN, events=confirmed(), lists=["newsletter-nl"])

    served.deliver("unsubscribe-abuse.form")

    assert suppressions(app_context, ALAN) == {
        "*": ("abuse", datetime(2026, 3, 6, 8, 0, 1, tzinfo=UTC))}


def test_an_unknown_address_unsubscribed_again_by_the_reconciliation_is_already_in_effect(
        served: Served, app_context: AppContext) -> None:
    served.deliver("unsubscribe.form")  # nobody has the address: suppressed only

    assert _reconciled(app_context, fixture_body("unsubscribe.form")) == "ignored"
    assert [(row.status, row.last_error) for row in inbox_rows(app_context)] == [
        ("applied", None), ("ignored", "already in effect")]


def test_an_unknown_address_is_suppressed_from_the_moment_mailchimp_fired_it(
        served: Served, app_context: AppContext) -> None:
    served.deliver("unsubscribe.form")

    assert suppressions(app_context, ADA) == {
        "newsletter": ("unsubscribe", datetime(2026, 3, 4, 13, 10, 40, tzinfo=UTC))}


def test_the_old_address_of_a_renamed_contact_unsubscribed_twice_is_one_withdrawal(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.post(urlencode({"type": "upemail", "fired_at": "2026-03-04 10:00:00",
                           "data[list_id]": TEST_AUDIENCE_ID, "data[old_email]": ADA,
                           "data[new_email]": KING}).encode())
    served.deliver("unsubscribe.form")  # addressed to the old address, after the rename

    assert _reconciled(app_context, fixture_body("unsubscribe.form")) == "ignored"
    assert len(person(app_context, KING).withdrawals) == 1


def test_an_unsubscribe_suppresses_every_address_the_person_ever_had(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.post(urlencode({"type": "upemail", "fired_at": "2026-03-04 10:00:00",
                           "data[list_id]": TEST_AUDIENCE_ID, "data[old_email]": ADA,
                           "data[new_email]": KING}).encode())

    served.post(fixture_body("unsubscribe.form").replace(
        b"ada.lovelace%40example.com", b"ada.king%40example.org"))

    assert set(suppressions(app_context, ADA)) == {"newsletter"}


def test_a_deletion_at_mailchimp_keeps_its_reason_to_the_ledgers_200_characters(
        served: Served, app_context: AppContext) -> None:
    # The reason gains " (deleted at ESP)"; the ledger column holds 200 characters.
    add_contact(app_context, EDSGER, events=confirmed(), lists=["newsletter-nl"])
    long_reason = "r" * 190

    served.post(fixture_body("unsubscribe-delete.form").replace(
        b"reason%5D=manual", b"reason%5D=" + long_reason.encode()))

    assert [reason for _, _, reason in person(app_context, EDSGER).withdrawals] == [
        (long_reason + " (deleted at ESP)")[:200]]


def test_an_unsubscribe_with_a_reason_longer_than_the_ledger_column_is_applied_and_kept_to_it(
        served: Served, app_context: AppContext) -> None:
    # Mailchimp states no bound on data[reason]; on PostgreSQL a longer value had failed
    # the purge (the event parked, the pushes blocked by I3 meanwhile).
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    long_reason = "r" * 250

    served.post(fixture_body("unsubscribe.form").replace(
        b"reason%5D=manual", b"reason%5D=" + long_reason.encode()))

    assert [reason for _, _, reason in person(app_context, ADA).withdrawals] == [
        long_reason[:200]]
    assert set(suppressions(app_context, ADA)) == {"newsletter"}


def test_an_unsubscribe_that_is_no_deletion_records_no_member_deleted_at_mailchimp(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])

    served.deliver("unsubscribe.form")

    with transaction(app_context.sessions) as session:
        record = gather(session, app_context.keyring, ADA)
        actions = [entry.action for entry in record.audit if entry.actor == "esp"]
    assert actions == ["consent_withdrawn", "lists_removed", "suppressed"]


def test_an_unsubscribe_suppresses_each_purpose_of_a_target_with_several(
        database_url: str, served_for: Callable[[AppContext], Served]) -> None:
    both = TargetSettings(name="newsletter", audience_id=TEST_AUDIENCE_ID,
                          purposes=("newsletter", "events"))
    with opened(make_settings(database_url, mailchimp_audience_id=None,
                              targets=[both])) as ctx:
        add_contact(ctx, ADA, events=confirmed("newsletter") + confirmed("events"),
                    lists=["newsletter-nl", "events"])

        served_for(ctx).deliver("unsubscribe.form")

        assert set(suppressions(ctx, ADA)) == {"newsletter", "events"}


def test_an_unsubscribe_that_only_adds_the_suppression_is_applied(
        served: Served, app_context: AppContext) -> None:
    # The CRM recorded the same withdrawal already (and the lists are left): only the
    # suppression is new, and that is a change.
    add_contact(app_context, ADA, events=[*confirmed(),
                                          ("newsletter", Action.WITHDRAWN, UNSUBSCRIBED_AT)])

    served.deliver("unsubscribe.form")

    assert set(suppressions(app_context, ADA)) == {"newsletter"}
    assert [row.status for row in inbox_rows(app_context)] == ["applied"]


def test_an_unsubscribe_teaches_the_member_state_unsubscribed(
        served: Served, app_context: AppContext) -> None:
    _subscribed_at_mailchimp(app_context, ADA)

    served.deliver("unsubscribe.form")

    with transaction(app_context.sessions) as session:
        assert session.scalar(select(PushState.esp_status)) == "unsubscribed"


def test_an_abuse_complaint_reported_as_cleaned_teaches_the_member_state_cleaned(
        served: Served, app_context: AppContext) -> None:
    _subscribed_at_mailchimp(app_context, ADA)

    served.post(urlencode({"type": "cleaned", "fired_at": "2026-03-04 13:10:40",
                           "data[list_id]": TEST_AUDIENCE_ID, "data[email]": ADA,
                           "data[reason]": "abuse"}).encode())

    with transaction(app_context.sessions) as session:
        assert session.scalar(select(PushState.esp_status)) == "cleaned"


def test_a_deletion_at_mailchimp_teaches_the_member_state_archived(
        served: Served, app_context: AppContext) -> None:
    _subscribed_at_mailchimp(app_context, EDSGER)

    served.deliver("unsubscribe-delete.form")

    with transaction(app_context.sessions) as session:
        assert session.scalar(select(PushState.esp_status)) == "archived"


def test_the_log_of_an_unsubscribe_already_in_effect_names_the_contact(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")
    # The same unsubscribe reported again a minute later: within the window.
    with stored_log_lines() as stored:
        served.post(fixture_body("unsubscribe.form").replace(b"13%3A10%3A40", b"13%3A11%3A40"))

    assert [(line["outcome"], line["contact_id"]) for line in stored] == [
        ("ignored", contact_id)]


def test_an_unsubscribe_already_in_effect_is_ignored_saying_so(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")

    served.post(fixture_body("unsubscribe.form").replace(b"13%3A10%3A40", b"13%3A11%3A40"))

    assert [(row.status, row.last_error) for row in inbox_rows(app_context)][-1] == (
        "ignored", "already in effect")


def test_the_log_of_an_unsubscribe_names_the_contact(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    with stored_log_lines() as stored:
        served.deliver("unsubscribe.form")

    assert [(line["outcome"], line["contact_id"]) for line in stored] == [
        ("applied", contact_id)]
