"""Every recorded Mailchimp body, delivered over real HTTP: the resulting database state."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from syncd.consent.policy import Action, Standing
from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import AuditEntry, PushState
from tests.builders import add_contact, at, confirmed
from tests.conftest import TEST_AUDIENCE_ID, fixture_body
from tests.webhooks.conftest import Served, inbox_rows
from tests.webhooks.snapshot import person, suppressions

ADA = "ada.lovelace@example.com"
ALAN = "alan.turing@example.com"


def _everywhere(ctx: AppContext, email: str) -> int:
    return add_contact(ctx, email, events=confirmed() + confirmed("offers") + confirmed("events"),
                       lists=["newsletter-nl", "newsletter-en", "offers", "events",
                              "ebook-leads"], first_name="Ada", last_name="Lovelace")


def test_unsubscribe_withdraws_purges_the_purpose_and_suppresses(
        served: Served, app_context: AppContext) -> None:
    _everywhere(app_context, ADA)
    response = served.deliver("unsubscribe.form")
    assert response.status_code == 200
    state = person(app_context, ADA)
    assert state.lists == ("ebook-leads", "events", "offers")
    assert state.standing in (Standing.WITHDRAWN, Standing.SUPPRESSED)
    assert state.withdrawals == (("esp_webhook", datetime(2026, 3, 4, 13, 10, 40, tzinfo=UTC),
                                  "manual"),)
    assert suppressions(app_context, ADA) == {
        "newsletter": ("unsubscribe", datetime(2026, 3, 4, 13, 10, 40, tzinfo=UTC))}
    [row] = inbox_rows(app_context)
    assert (row.kind, row.status, row.address_hmac) == (
        "unsubscribe", "applied", app_context.keyring.address_hmac(ADA))


def test_unsubscribe_keeps_campaign_id_in_the_ledger(served: Served,
                                                     app_context: AppContext) -> None:
    from syncd.consent import ledger

    contact_id = _everywhere(app_context, ADA)
    served.deliver("unsubscribe.form")
    with transaction(app_context.sessions) as session:
        [withdrawal] = [e for e in ledger.history(session, contact_id) if e.action == "withdrawn"]
        assert withdrawal.campaign_id == "cb398d21d2"


def test_unsubscribe_without_action_is_applied(served: Served, app_context: AppContext) -> None:
    add_contact(app_context, "grace.hopper@example.com", events=confirmed(),
                lists=["newsletter-en", "offers"])
    assert served.deliver("unsubscribe-no-action.form").status_code == 200
    state = person(app_context, "grace.hopper@example.com")
    assert state.lists == ("offers",)
    assert not state.eligible
    assert "newsletter" in suppressions(app_context, "grace.hopper@example.com")


def test_unsubscribe_abuse_empties_every_marketing_list_and_suppresses_all(
        served: Served, app_context: AppContext) -> None:
    _everywhere(app_context, ALAN)
    assert served.deliver("unsubscribe-abuse.form").status_code == 200
    assert person(app_context, ALAN).lists == ("ebook-leads",)  # not a marketing list
    assert set(suppressions(app_context, ALAN)) == {"*"}
    assert not person(app_context, ALAN, "offers").eligible
    assert not person(app_context, ALAN, "events").eligible


def test_unsubscribe_delete_is_purged_and_noted(served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, "edsger.dijkstra@example.com", events=confirmed(),
                             lists=["newsletter-nl"])
    assert served.deliver("unsubscribe-delete.form").status_code == 200
    state = person(app_context, "edsger.dijkstra@example.com")
    assert state.lists == ()
    assert state.withdrawals[0][2] == "manual (deleted at ESP)"
    assert suppressions(app_context, "edsger.dijkstra@example.com")["newsletter"][0] == "esp_delete"
    with transaction(app_context.sessions) as session:
        actions = set(session.scalars(select(AuditEntry.action)
                                      .where(AuditEntry.contact_id == contact_id)))
    assert "esp_member_deleted" in actions


def test_unsubscribe_for_unknown_address_still_suppresses(served: Served,
                                                          app_context: AppContext) -> None:
    assert served.deliver("unsubscribe.form").status_code == 200
    assert person(app_context, ADA).email_key is None
    assert "newsletter" in suppressions(app_context, ADA)


def test_cleaned_hard_marks_undeliverable_and_purges_the_purpose(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, "nobody.home@example.net", events=confirmed(),
                lists=["newsletter-nl", "offers"])
    assert served.deliver("cleaned-hard.form").status_code == 200
    state = person(app_context, "nobody.home@example.net")
    assert state.undeliverable
    assert state.lists == ("offers",)
    assert state.standing is Standing.UNDELIVERABLE
    assert state.withdrawals == ()  # a bounce is not a withdrawal
    assert suppressions(app_context, "nobody.home@example.net") == {}


def test_cleaned_abuse_is_an_objection(served: Served, app_context: AppContext) -> None:
    _everywhere(app_context, ALAN)
    assert served.deliver("cleaned-abuse.form").status_code == 200
    state = person(app_context, ALAN)
    assert state.lists == ("ebook-leads",)
    assert state.withdrawals[0][2] == "abuse"
    assert set(suppressions(app_context, ALAN)) == {"*"}


def test_upemail_moves_the_contact_and_keeps_history(served: Served,
                                                     app_context: AppContext) -> None:
    from syncd.clock import utcnow

    contact_id = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    with transaction(app_context.sessions) as session:
        session.add(PushState(contact_id=contact_id, audience_id=TEST_AUDIENCE_ID,
                              settled_revision=1, esp_status="subscribed", esp_email=ADA,
                              updated_at=utcnow()))
    before = person(app_context, ADA)
    assert served.deliver("upemail.form").status_code == 200
    after = person(app_context, "ada.king@example.org")
    assert person(app_context, ADA).email_key is None
    assert after.email_key == "ada.king@example.org"
    assert after.confirmations == before.confirmations
    assert after.eligible  # consent follows the person, not the address
    assert after.revision > before.revision
    with transaction(app_context.sessions) as session:
        state = session.get(PushState, (contact_id, TEST_AUDIENCE_ID))
        assert state is not None
        assert state.esp_email == "ada.king@example.org"


def test_upemail_carries_a_suppression_and_clears_undeliverable(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")
    assert served.deliver("upemail.form").status_code == 200
    assert suppressions(app_context, "ada.king@example.org") == suppressions(app_context, ADA)
    assert not person(app_context, "ada.king@example.org").eligible


def test_profile_is_ignored_when_the_crm_is_master(served: Served,
                                                   app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), first_name="Ada", last_name="Lovelace")
    assert served.deliver("profile.form").status_code == 200
    state = person(app_context, ADA)
    assert (state.first_name, state.last_name) == ("Ada", "Lovelace")
    [row] = inbox_rows(app_context)
    assert row.status == "ignored"


def test_profile_updates_names_when_the_esp_is_master(
        database_url: str, served_for: object) -> None:
    from tests.conftest import make_settings

    ctx = AppContext.open(make_settings(database_url, webhook_profile_master="esp"))
    ctx.sync_lists()
    try:
        add_contact(ctx, ADA, events=confirmed(), first_name="Ada", last_name="Lovelace")
        served = served_for(ctx)  # type: ignore[operator]
        assert served.deliver("profile.form").status_code == 200
        state = person(ctx, ADA)
        assert (state.first_name, state.last_name) == ("Augusta Ada", "King")
        assert state.confirmations == 1  # never consent
    finally:
        ctx.close()


def test_subscribe_never_creates_consent(served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=[("ebook", Action.GIVEN, at(0))])
    assert served.deliver("subscribe.form").status_code == 200
    assert served.deliver("subscribe-groupings.form").status_code == 200
    assert not person(app_context, ADA).eligible
    assert person(app_context, "anna.example@example.se").email_key is None
    assert {row.status for row in inbox_rows(app_context)} == {"ignored"}


def test_subscribe_records_the_confirmation_syncd_asked_for(
        served: Served, app_context: AppContext) -> None:
    from syncd.clock import utcnow

    contact_id = add_contact(app_context, ADA, events=[("newsletter", Action.GIVEN, at(0))])
    with transaction(app_context.sessions) as session:
        session.add(PushState(contact_id=contact_id, audience_id=TEST_AUDIENCE_ID,
                              settled_revision=2, esp_status="pending", esp_email=ADA,
                              pending_requested_at=at(0.5), updated_at=utcnow()))
    assert served.deliver("subscribe.form").status_code == 200
    state = person(app_context, ADA)
    assert state.confirmations == 1
    assert state.standing is Standing.CONFIRMED


def test_campaign_is_stored_and_ignored(served: Served, app_context: AppContext) -> None:
    assert served.deliver("campaign.form").status_code == 200
    [row] = inbox_rows(app_context)
    assert (row.kind, row.status, row.address_hmac) == ("campaign", "ignored", None)


def test_event_for_another_audience_is_stored_and_ignored(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    body = fixture_body("unsubscribe.form")
    assert served.post(body.replace(b"f1243a3b12", b"0000000000")).status_code == 200
    assert person(app_context, ADA).lists == ("newsletter-nl",)
    assert suppressions(app_context, ADA) == {}
    [row] = inbox_rows(app_context)
    assert row.status == "ignored"
