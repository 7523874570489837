"""Mailchimp's double opt-in confirmation (`subscribe`, rule 3, I13) over HTTP through the
real endpoint: what the ledger and the member state keep of it, and the consent request
it confirms, at the edges of the click's moment (a request, withdrawal or suppression at
that very moment counts; one after it does not; another purpose's never), and what an
ignored `subscribe` says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import select

from syncd.clock import utcnow
from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm import store, suppression
from syncd.db import transaction
from syncd.schema import ConsentEvent, PushState
from tests.builders import add_contact, at
from tests.conftest import TEST_AUDIENCE_ID
from tests.webhooks.conftest import Served, inbox_rows, stored_log_lines
from tests.webhooks.snapshot import person

ADA = "ada.lovelace@example.com"
CLICK = datetime(2026, 3, 2, 9, 42, 31, tzinfo=UTC)  # the body's fired_at
SECOND = timedelta(seconds=1)
NO_REQUEST = ("ignored", "no open consent request at that moment")


def _subscribe(*, ip_opt: str | None = "203.0.113.7", when: datetime = CLICK) -> bytes:
    fields = {"type": "subscribe", "fired_at": when.strftime("%Y-%m-%d %H:%M:%S"),
              "data[id]": "e7c77d3852", "data[email]": ADA, "data[email_type]": "html",
              "data[list_id]": TEST_AUDIENCE_ID}
    fields |= {"data[ip_opt]": ip_opt} if ip_opt else {}
    return urlencode(fields).encode()


def _asked(ctx: AppContext, contact_id: int, *, when: datetime | None = None,
           status: str = "pending") -> None:
    """syncd pushed the member as `pending` at `when` (Mailchimp mailed the request)."""
    with transaction(ctx.sessions) as session:
        session.add(PushState(contact_id=contact_id, audience_id=TEST_AUDIENCE_ID,
                              settled_revision=2, esp_status=status, esp_email=ADA,
                              esp_origin="pushed", pending_requested_at=when or at(0.5),
                              updated_at=utcnow()))


def _signed_up(ctx: AppContext, *events: tuple[str, Action, datetime]) -> int:
    contact_id = add_contact(ctx, ADA, events=list(events))
    _asked(ctx, contact_id)
    return contact_id


def _withdrawn(ctx: AppContext, purpose: str, when: datetime) -> None:
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, ADA)
        assert contact is not None
        ledger.append(session, contact, ConsentRecord(
            purpose=purpose, action=Action.WITHDRAWN, occurred_at=when,
            source="preference_page"), actor="test")


def _suppressed(ctx: AppContext, purpose: str, when: datetime) -> None:
    with transaction(ctx.sessions) as session:
        suppression.suppress(session, [ctx.keyring.address_hmac(ADA)], purpose=purpose,
                             reason="manual", actor="test", created_at=when)


def _outcome(ctx: AppContext) -> tuple[str, str | None]:
    row = inbox_rows(ctx)[-1]
    return row.status, row.last_error


def test_the_confirmation_is_recorded_as_mailchimp_reported_it(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.GIVEN, at(0)))

    served.post(_subscribe())

    with transaction(app_context.sessions) as session:
        event = session.scalars(select(ConsentEvent).where(
            ConsentEvent.action == "confirmed")).one()
        recorded = (event.purpose, event.occurred_at, event.source, event.ip, event.reason)
    assert recorded == (
        "newsletter", CLICK, "esp_webhook", "203.0.113.7",
        "double opt-in confirmed through Mailchimp's confirmation mail that syncd asked "
        "for (evidence: ip_opt, fired_at)")


def test_the_confirmed_member_is_subscribed_with_the_clicks_evidence(
        served: Served, app_context: AppContext) -> None:
    contact_id = _signed_up(app_context, ("newsletter", Action.GIVEN, at(0)))

    served.post(_subscribe())

    with transaction(app_context.sessions) as session:
        state = session.scalars(select(PushState).where(
            PushState.contact_id == contact_id)).one()
        assert (state.esp_status, state.esp_opt_ip, state.esp_opt_at) == (
            "subscribed", "203.0.113.7", CLICK)


def test_a_request_syncd_sent_at_the_very_moment_of_the_click_is_confirmed(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=[("newsletter", Action.GIVEN, at(0))])
    _asked(app_context, contact_id, when=CLICK)

    served.post(_subscribe())

    assert _outcome(app_context) == ("applied", None)
    assert person(app_context, ADA).confirmations == 1


def test_a_request_syncd_sent_after_the_click_is_no_confirmation(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=[("newsletter", Action.GIVEN, at(0))])
    _asked(app_context, contact_id, when=CLICK + SECOND)

    served.post(_subscribe())

    assert _outcome(app_context) == ("ignored", "not a confirmation syncd asked for")
    assert person(app_context, ADA).confirmations == 0


def test_a_member_no_longer_pending_is_no_confirmation(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=[("newsletter", Action.GIVEN, at(0))])
    _asked(app_context, contact_id, status="subscribed")

    served.post(_subscribe())

    assert _outcome(app_context) == ("ignored", "not a confirmation syncd asked for")


def test_a_member_syncd_never_pushed_is_no_confirmation(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=[("newsletter", Action.GIVEN, at(0))])

    served.post(_subscribe())

    assert _outcome(app_context) == ("ignored", "not a confirmation syncd asked for")


def test_a_subscribe_without_opt_in_evidence_says_it_is_an_admin_or_api_subscribe(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.GIVEN, at(0)))

    served.post(_subscribe(ip_opt=None))

    assert _outcome(app_context) == (
        "ignored", "subscribe without Mailchimp's opt-in evidence (no ip_opt): an admin or "
                   "API subscribe, not a confirmation")


def test_a_subscribe_for_an_unknown_address_says_it_never_creates_consent(
        served: Served, app_context: AppContext) -> None:
    served.post(_subscribe())

    assert _outcome(app_context) == ("ignored", "subscribe never creates consent")


def test_a_sign_up_at_the_very_moment_of_the_click_is_an_open_request(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.GIVEN, CLICK))

    served.post(_subscribe())

    assert person(app_context, ADA).confirmations == 1


def test_a_confirmed_consent_before_the_click_is_an_open_request(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.CONFIRMED, at(0)))

    served.post(_subscribe())

    assert person(app_context, ADA).confirmations == 2


def test_a_sign_up_after_the_click_is_no_open_request(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.GIVEN, CLICK + SECOND))

    served.post(_subscribe())

    assert _outcome(app_context) == NO_REQUEST
    assert person(app_context, ADA).confirmations == 0


def test_a_sign_up_for_another_purpose_is_no_open_request(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("offers", Action.GIVEN, at(0)))

    served.post(_subscribe())

    assert _outcome(app_context) == NO_REQUEST


def test_a_withdrawal_at_the_very_moment_of_the_click_closes_the_request(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.GIVEN, at(0)))
    _withdrawn(app_context, "newsletter", CLICK)

    served.post(_subscribe())

    assert _outcome(app_context) == NO_REQUEST


def test_a_withdrawal_after_the_click_leaves_the_request_open(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.GIVEN, at(0)))
    _withdrawn(app_context, "newsletter", CLICK + SECOND)

    served.post(_subscribe())

    assert _outcome(app_context) == ("applied", None)


def test_a_withdrawal_of_another_purpose_leaves_the_request_open(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.GIVEN, at(0)))
    _withdrawn(app_context, "offers", at(0.25))

    served.post(_subscribe())

    assert _outcome(app_context) == ("applied", None)


def test_a_sign_up_at_the_moment_of_a_withdrawal_is_no_open_request(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.GIVEN, at(0)))
    _withdrawn(app_context, "newsletter", at(0))

    served.post(_subscribe())

    assert _outcome(app_context) == NO_REQUEST


def test_a_sign_up_after_a_withdrawal_opens_a_new_request(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.GIVEN, at(0)),
               ("newsletter", Action.GIVEN, at(0.25)))
    _withdrawn(app_context, "newsletter", at(0.1))

    served.post(_subscribe())

    assert _outcome(app_context) == ("applied", None)


def test_a_suppression_at_the_very_moment_of_the_click_closes_the_request(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.GIVEN, at(0)))
    _suppressed(app_context, "newsletter", CLICK)

    served.post(_subscribe())

    assert _outcome(app_context) == NO_REQUEST


def test_a_suppression_after_the_click_leaves_the_request_open(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.GIVEN, at(0)))
    _suppressed(app_context, "newsletter", CLICK + SECOND)

    served.post(_subscribe())

    assert _outcome(app_context) == ("applied", None)


def test_a_suppression_of_every_purpose_closes_the_request(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.GIVEN, at(0)))
    _suppressed(app_context, suppression.ALL_PURPOSES, at(0.25))

    served.post(_subscribe())

    assert _outcome(app_context) == NO_REQUEST


def test_a_suppression_of_another_purpose_leaves_the_request_open(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context, ("newsletter", Action.GIVEN, at(0)))
    _suppressed(app_context, "offers", at(0.25))

    served.post(_subscribe())

    assert _outcome(app_context) == ("applied", None)


def test_a_contact_without_any_consent_event_has_no_open_request(
        served: Served, app_context: AppContext) -> None:
    _signed_up(app_context)

    served.post(_subscribe())

    assert _outcome(app_context) == NO_REQUEST


def test_the_log_of_an_ignored_subscribe_names_the_contact_it_reached(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=[("offers", Action.GIVEN, at(0))])
    with stored_log_lines() as stored:
        served.post(_subscribe())  # syncd never pushed the member
        _asked(app_context, contact_id)
        served.post(_subscribe(ip_opt=None, when=CLICK + SECOND))  # no click's evidence
        served.post(_subscribe(when=CLICK + 2 * SECOND))  # no request of the purpose

    assert [(line["outcome"], line["contact_id"]) for line in stored] == [
        ("ignored", contact_id)] * 3
    assert [row.last_error for row in inbox_rows(app_context)] == [
        "not a confirmation syncd asked for",
        "subscribe without Mailchimp's opt-in evidence (no ip_opt): an admin or API "
        "subscribe, not a confirmation", "no open consent request at that moment"]


def test_the_log_of_a_recorded_confirmation_names_the_contact(
        served: Served, app_context: AppContext) -> None:
    contact_id = _signed_up(app_context, ("newsletter", Action.GIVEN, at(0)))
    with stored_log_lines() as stored:
        served.post(_subscribe())

    assert [(line["outcome"], line["contact_id"]) for line in stored] == [
        ("applied", contact_id)]
