"""Hard bounces (`cleaned`, rule 9) over HTTP through the real endpoint, and through the
inbox the reconciliation pull feeds: the audit trail an operator reads (who, which
channel, Mailchimp's reason, the lists of the purpose left), what the member state
learns, a bounce of an address the contact no longer has, and what an ignored bounce says."""

from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy import select

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import AuditEntry, PushState
from syncd.webhooks.inbox import receive
from syncd.webhooks.mailchimp_form import parse_body
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID
from tests.webhooks.conftest import Served, inbox_rows, stored_log_lines
from tests.webhooks.snapshot import person

ADA = "ada.lovelace@example.com"
KING = "ada.king@example.org"


def _cleaned(address: str, *, reason: str | None = "hard",
             fired_at: str = "2026-03-07 22:01:00") -> bytes:
    fields = {"type": "cleaned", "fired_at": fired_at, "data[list_id]": TEST_AUDIENCE_ID,
              "data[campaign_id]": "4fjk2ma9xd", "data[email]": address}
    fields |= {"data[reason]": reason} if reason else {}
    return urlencode(fields).encode()


def _upemail(old: str, new: str, fired_at: str) -> bytes:
    return urlencode({"type": "upemail", "fired_at": fired_at,
                      "data[list_id]": TEST_AUDIENCE_ID, "data[new_id]": "51da8c3259",
                      "data[old_email]": old, "data[new_email]": new}).encode()


def _audit(ctx: AppContext) -> list[tuple[str, str, int | None, dict[str, object]]]:
    with transaction(ctx.sessions) as session:
        return [(e.actor, e.action, e.contact_id, dict(e.details)) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.actor == "esp").order_by(AuditEntry.id))]


def _member_status(ctx: AppContext, contact_id: int) -> str | None:
    with transaction(ctx.sessions) as session:
        return session.scalar(select(PushState.esp_status).where(
            PushState.contact_id == contact_id, PushState.audience_id == TEST_AUDIENCE_ID))


def _subscribed_member(ctx: AppContext, contact_id: int, address: str) -> None:
    with transaction(ctx.sessions) as session:
        session.add(PushState(contact_id=contact_id, audience_id=TEST_AUDIENCE_ID,
                              settled_revision=1, esp_status="subscribed", esp_email=address,
                              updated_at=utcnow()))


def test_a_hard_bounce_is_audited_with_the_contact_the_channel_and_mailchimps_reason(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed(),
                             lists=["newsletter-nl", "offers"])

    served.post(_cleaned(ADA))

    assert _audit(app_context) == [
        ("esp", "marked_undeliverable", contact_id,
         {"channel": "esp_webhook", "reason": "hard"}),
        ("esp", "lists_removed", contact_id,
         {"lists": ["newsletter-nl"], "reason": "cleaned (hard bounce)"})]
    assert person(app_context, ADA).lists == ("offers",)


def test_a_hard_bounce_without_a_reason_is_audited_as_hard(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed())

    served.post(_cleaned(ADA, reason=None))

    assert _audit(app_context) == [
        ("esp", "marked_undeliverable", contact_id,
         {"channel": "esp_webhook", "reason": "hard"})]
    assert person(app_context, ADA).undeliverable


def test_a_hard_bounce_the_reconciliation_pull_reports_is_audited_with_its_channel(
        app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed())
    body = _cleaned(ADA)

    receive(app_context.sessions, parse_body(body), body.decode(),
            settings=app_context.settings, keyring=app_context.keyring,
            source="reconciliation")

    assert _audit(app_context) == [
        ("esp", "marked_undeliverable", contact_id,
         {"channel": "reconciliation", "reason": "hard"})]


def test_a_hard_bounce_tells_the_member_state_that_mailchimp_cleaned_the_member(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed())
    _subscribed_member(app_context, contact_id, ADA)

    served.post(_cleaned(ADA))

    assert _member_status(app_context, contact_id) == "cleaned"


def test_a_bounce_of_an_address_the_contact_no_longer_has_leaves_the_new_one_deliverable(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    _subscribed_member(app_context, contact_id, ADA)
    served.post(_upemail(ADA, KING, "2026-03-05 10:00:00"))

    served.post(_cleaned(ADA))

    state = person(app_context, KING)
    assert (state.email_key, state.undeliverable) == (KING, False)
    assert "marked_undeliverable" not in [action for _, action, _, _ in _audit(app_context)]
    # Mailchimp cleaned the old member, not the one the contact now is.
    assert _member_status(app_context, contact_id) == "subscribed"


def test_a_bounce_of_an_old_address_still_takes_the_person_off_the_lists_of_the_purpose(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.post(_upemail(ADA, KING, "2026-03-05 10:00:00"))

    served.post(_cleaned(ADA))

    assert person(app_context, KING).lists == ()
    assert inbox_rows(app_context)[-1].status == "applied"
    assert _audit(app_context)[-1] == (
        "esp", "lists_removed", contact_id,
        {"lists": ["newsletter-nl"], "reason": "cleaned (hard bounce)"})


def test_a_bounce_for_an_unknown_address_is_ignored_and_says_so(
        served: Served, app_context: AppContext) -> None:
    served.post(_cleaned(ADA))

    [row] = inbox_rows(app_context)
    assert (row.status, row.last_error) == ("ignored", "hard bounce for an unknown address")


def test_a_bounce_already_in_effect_is_ignored_and_says_so(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.post(_cleaned(ADA))

    served.post(_cleaned(ADA, fired_at="2026-03-08 22:01:00"))

    assert [(row.status, row.last_error) for row in inbox_rows(app_context)] == [
        ("applied", None), ("ignored", "already in effect")]


def test_the_log_of_a_stored_bounce_names_the_contact_it_reached(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed())
    with stored_log_lines() as stored:
        served.post(_cleaned(ADA))
        served.post(_cleaned(ADA, fired_at="2026-03-08 22:01:00"))

    assert [(line["outcome"], line["contact_id"]) for line in stored] == [
        ("applied", contact_id), ("ignored", contact_id)]


def test_a_late_hard_bounce_keeps_the_lists_of_a_consent_confirmed_after_it(
        served: Served, app_context: AppContext) -> None:
    # Fired 2026-03-07; the person confirmed again on 2026-03-11 (I6: the newer wins).
    add_contact(app_context, ADA, events=confirmed(days=10), lists=["newsletter-nl"])

    served.post(_cleaned(ADA))

    state = person(app_context, ADA)
    assert (state.lists, state.undeliverable) == (("newsletter-nl",), True)
