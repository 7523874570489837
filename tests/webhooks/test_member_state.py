"""Webhooks against Mailchimp's real member state: an admin's subscribe is no double opt-in
(I13); an address change keeps one person, so a stale export of the old address stays
out (I12); a reconciliation after an admin edit records no second withdrawal (I13)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select

from mailchimp_emulator import MailchimpEmulator
from syncd.clock import utcnow
from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action, Standing
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.inbound.reconcile import run_reconcile
from syncd.schema import ConsentEvent, PushState
from syncd.sync.run import run_sync
from syncd.webhooks.registration import register
from tests.builders import add_contact, at, confirmed
from tests.conftest import TEST_AUDIENCE_ID, TEST_WEBHOOK_SECRET, fixture_body
from tests.webhooks.conftest import Served
from tests.webhooks.snapshot import person

ADA = "ada.lovelace@example.com"


def _pending_state(ctx: AppContext, contact_id: int, *, asked: bool) -> None:
    with transaction(ctx.sessions) as session:
        session.add(PushState(contact_id=contact_id, audience_id=TEST_AUDIENCE_ID,
                              settled_revision=2, esp_status="pending", esp_email=ADA,
                              esp_origin="pulled" if not asked else "pushed",
                              pending_requested_at=at(0.5) if asked else None,
                              updated_at=utcnow()))


def test_subscribe_of_a_pending_member_syncd_never_asked_for_is_no_confirmation(
        served: Served, app_context: AppContext) -> None:
    # Pending at Mailchimp before syncd (pulled): an admin subscribes them.
    contact_id = add_contact(app_context, ADA, events=[("newsletter", Action.GIVEN, at(0))])
    _pending_state(app_context, contact_id, asked=False)

    assert served.deliver("subscribe.form").status_code == 200

    assert person(app_context, ADA).confirmations == 0


def test_subscribe_without_the_clicks_opt_in_evidence_is_no_confirmation(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=[("newsletter", Action.GIVEN, at(0))])
    _pending_state(app_context, contact_id, asked=True)
    body = fixture_body("subscribe.form").replace(b"data%5Bip_opt%5D=203.0.113.7", b"")

    assert served.post(body).status_code == 200

    assert person(app_context, ADA).confirmations == 0


def test_the_confirmation_syncd_asked_for_says_which_evidence_mailchimp_gave(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=[("newsletter", Action.GIVEN, at(0))])
    _pending_state(app_context, contact_id, asked=True)

    served.deliver("subscribe.form")

    with transaction(app_context.sessions) as session:
        event = session.scalars(select(ConsentEvent).where(
            ConsentEvent.action == "confirmed")).one()
    assert (event.ip, "ip_opt" in (event.reason or "")) == ("203.0.113.7", True)


def _registered(ctx: AppContext, served_for: Callable[[AppContext], Served]) -> None:
    from syncd.esp.mailchimp import mailchimp_client

    client = mailchimp_client(ctx.settings)
    try:
        register(client, served_for(ctx).url(), [TEST_WEBHOOK_SECRET])
    finally:
        client.close()


def test_stale_export_of_the_old_address_of_a_person_who_changed_address_and_left_stays_out(
        emulated_context: AppContext, emulator: MailchimpEmulator,
        served_for: Callable[[AppContext], Served]) -> None:
    ctx = emulated_context
    _registered(ctx, served_for)
    add_contact(ctx, "old@example.org", events=confirmed(days=0))
    run_sync(ctx)
    emulator.fire_upemail("old@example.org", "new@example.org", source="user")
    emulator.fire_unsubscribe("new@example.org", source="user")
    # A CRM export from before both: the old address, the old consent.
    add_contact(ctx, "old@example.org", events=confirmed(days=0))

    report = run_sync(ctx)

    assert person(ctx, "old@example.org").standing is Standing.SUPPRESSED
    assert report.added == 0
    assert [(m["email_address"], m["status"]) for m in emulator.members()] == [
        ("new@example.org", "unsubscribed")]


def test_reconciliation_after_an_admin_edit_records_no_second_withdrawal(
        emulated_context: AppContext, emulator: MailchimpEmulator) -> None:
    ctx = emulated_context
    add_contact(ctx, ADA, events=confirmed(days=0))
    run_sync(ctx)
    emulator.fire_unsubscribe(ADA, deliver=False)
    run_reconcile(ctx)
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, ADA)
        assert contact is not None
        moment = utcnow()
        for action, offset in ((Action.GIVEN, 0), (Action.CONFIRMED, 1)):
            ledger.append(session, contact, ConsentRecord(
                purpose="newsletter", action=action,
                occurred_at=moment + timedelta(microseconds=offset), source="web_form"),
                actor="test")
    # An admin edits the unsubscribed member: its last_changed moves, its status does not.
    emulator.fire_profile(ADA, {"FNAME": "Ada"}, deliver=False)

    run_reconcile(ctx)

    with transaction(ctx.sessions) as session:
        withdrawals = session.scalar(select(func.count()).select_from(ConsentEvent).where(
            ConsentEvent.action == "withdrawn"))
    assert withdrawals == 1
    assert person(ctx, ADA).standing is Standing.RE_CONSENT
