"""The consent gate end to end: real database (both), real official client, the emulator."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mailchimp_emulator import MailchimpEmulator
from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.schema import Contact, InternalList, PushState, SyncRun
from tests.builders import add_contact, at, change_first_name, confirmed
from tests.sync.conftest import Syncer, sync_settings


def _withdraw(ctx: AppContext, email: str, days: float) -> None:
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, email)
        assert contact is not None
        ledger.append(session, contact, ConsentRecord(
            purpose="newsletter", action=Action.WITHDRAWN, occurred_at=at(days), source="crm"),
            actor="test")


def _confirm_again(ctx: AppContext, email: str, days: float) -> None:
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, email)
        assert contact is not None
        for action, offset in ((Action.GIVEN, 0.0), (Action.CONFIRMED, 0.01)):
            ledger.append(session, contact, ConsentRecord(
                purpose="newsletter", action=action, occurred_at=at(days + offset),
                source="web_form", ip="198.51.100.4"), actor="test")


def _subscriber_statuses(emu: MailchimpEmulator) -> dict[str, str]:
    return {m["email_address"]: m["status"] for m in emu.members()}


def test_only_confirmed_newsletter_consents_reach_the_audience(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    add_contact(app_context, "ada@example.org", events=confirmed(), lists=["newsletter-nl"])
    add_contact(app_context, "ebook@example.org", events=confirmed("ebook"),
                lists=["ebook-leads"])
    add_contact(app_context, "unconfirmed@example.org",
                events=[("newsletter", Action.GIVEN, at(1))])
    add_contact(app_context, "customer@example.org", customer=True, lists=["offers"])
    add_contact(app_context, "left@example.org",
                events=[*confirmed(), ("newsletter", Action.WITHDRAWN, at(2))])

    report = sync()

    assert _subscriber_statuses(emulator) == {"ada@example.org": "subscribed"}
    assert report.added == 1
    assert report.skipped == {"other_purpose_only": 1, "soft_opt_in_only": 1,
                              "unconfirmed": 1, "withdrawn": 1}


def test_first_push_uses_one_batch_call_per_500(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    for n in range(12):
        add_contact(app_context, f"p{n}@example.org", events=confirmed(),
                    lists=["newsletter-en"])

    report = sync()

    assert emulator.stats.write_calls == 1
    assert emulator.stats.batch_sizes == [12]
    assert report.write_calls == 1


def test_second_run_makes_no_write_calls(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    for n in range(5):
        add_contact(app_context, f"p{n}@example.org", events=confirmed(), first_name="P",
                    lists=["newsletter-nl"])
    sync()
    emulator.reset_stats()

    report = sync()

    assert emulator.stats.write_calls == 0
    assert (report.considered, report.write_calls) == (0, 0)


def test_existing_unsubscribed_member_stays_unsubscribed(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    emulator.configure(allow_api_resubscribe=True)  # even where Mailchimp would let it in
    emulator.seed_member("ada@example.org", "unsubscribed")
    add_contact(app_context, "ada@example.org", events=confirmed(), lists=["newsletter-nl"])

    report = sync()

    assert emulator.member("ada@example.org")["status"] == "unsubscribed"  # type: ignore[index]
    # The first run read the audience: Mailchimp's unsubscribe is in the ledger and
    # suppresses the older consent (rule 6).
    assert report.audience_pulled
    assert report.skipped == {"suppressed": 1}


def test_withdrawal_in_crm_becomes_unsubscribe_at_esp(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    for n in range(20):
        add_contact(app_context, f"p{n}@example.org", events=confirmed())
    sync()
    _withdraw(app_context, "p3@example.org", 10)

    report = sync()

    assert emulator.member("p3@example.org")["status"] == "unsubscribed"  # type: ignore[index]
    assert report.unsubscribed == 1
    assert emulator.stats.count("PATCH", "member") == 1


def test_reconsent_after_unsubscribe_goes_pending_once_never_subscribed(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    emulator.configure(allow_api_resubscribe=True)
    for n in range(10):
        add_contact(app_context, f"p{n}@example.org", events=confirmed())
    sync()
    _withdraw(app_context, "p1@example.org", 10)
    sync()
    _confirm_again(app_context, "p1@example.org", 20)

    first = sync()
    _confirm_again(app_context, "p1@example.org", 21)  # a second re-confirmation in the CRM
    sync()

    assert emulator.member("p1@example.org")["status"] == "pending"  # type: ignore[index]
    assert emulator.confirmation_mails_sent("p1@example.org") == 1
    assert first.reconsent_pending == 1


def test_profile_change_is_pushed_without_status(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    add_contact(app_context, "ada@example.org", events=confirmed(), first_name="Ada")
    sync()
    sent: list[object] = []
    # A PATCH: it can never create a member (PUT with status_if_new could, I12).
    emulator.set_hook(lambda request: sent.append(request.body), match=r"^PATCH ")
    change_first_name(app_context, "ada@example.org", "Adaline")

    report = sync()

    assert emulator.member("ada@example.org")["merge_fields"]["FNAME"] == "Adaline"  # type: ignore[index]
    assert report.updated == 1
    assert len(sent) == 1
    assert "status" not in sent[0]


def test_tags_mirror_newsletter_lists(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    add_contact(app_context, "ada@example.org", events=confirmed(),
                lists=["newsletter-nl", "offers"])
    sync()
    with transaction(app_context.sessions) as session:
        contact = store.find_contact(session, "ada@example.org")
        english = session.scalars(select(InternalList).where(
            InternalList.name == "newsletter-en")).one()
        assert contact is not None
        store.add_to_list(session, contact, english, actor="test", source="test")
        store.remove_from_lists(session, contact, actor="test", reason="test",
                                purpose="newsletter")
        store.add_to_list(session, contact, english, actor="test", source="test")

    sync()

    tags = [t["name"] for t in emulator.member("ada@example.org")["tags"]]  # type: ignore[index]
    assert tags == ["newsletter-en"]


def test_opt_in_proof_reaches_the_member(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    add_contact(app_context, "ada@example.org", events=confirmed(days=2), ip="203.0.113.9")

    sync()

    member = emulator.member("ada@example.org")
    assert member is not None
    assert (member["ip_signup"], member["ip_opt"]) == ("203.0.113.9", "203.0.113.9")
    assert member["timestamp_signup"] == at(2).isoformat(timespec="seconds")
    assert member["timestamp_opt"] == (at(2) + timedelta(hours=1)).isoformat(timespec="seconds")


def test_unapplied_unsubscribe_webhook_blocks_the_push(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    from syncd.clock import utcnow
    from syncd.schema import WebhookEvent

    add_contact(app_context, "ada@example.org", events=confirmed())
    with transaction(app_context.sessions) as session:
        session.add(WebhookEvent(dedupe_key="k1", kind="unsubscribe", received_at=utcnow(),
                                 address_hmac=app_context.keyring.address_hmac("ada@example.org"),
                                 status="parked", attempts=5, source="webhook"))

    first = sync()
    second = sync()

    assert emulator.members() == []
    assert first.skipped == {"webhook_pending": 1} == second.skipped


def test_dry_run_writes_nothing_anywhere(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    add_contact(app_context, "ada@example.org", events=confirmed())
    add_contact(app_context, "eve@example.org", events=[("newsletter", Action.GIVEN, at(1))])

    report = sync(dry_run=True)

    with transaction(app_context.sessions) as session:
        rows = session.scalar(select(func.count()).select_from(PushState))
        runs = session.scalar(select(func.count()).select_from(SyncRun))
    assert (rows, runs) == (0, 0)
    assert emulator.stats.write_calls == 0
    assert emulator.members() == []
    assert (report.added, report.skipped) == (1, {"unconfirmed": 1})
    assert [e.action for e in report.examples] == ["add", "settle"]


def test_safety_limit_refuses_mass_unsubscribe_and_force_passes(
        database_url: str, emulator: MailchimpEmulator) -> None:
    # The share alone decides here: no floor.
    app_context = AppContext.open(sync_settings(database_url, emulator,
                                                sync_unsubscribe_floor=0))
    app_context.sync_lists()
    sync = Syncer(app_context)
    for n in range(10):
        add_contact(app_context, f"p{n}@example.org", events=confirmed())
    sync()
    for n in range(3):
        _withdraw(app_context, f"p{n}@example.org", 10)

    refused = sync()
    forced = sync(force=True)

    assert (refused.outcome, refused.planned_unsubscribes, refused.known_members) == (
        "refused", 3, 10)
    assert forced.unsubscribed == 3
    assert len(emulator.members("unsubscribed")) == 3
    app_context.close()


def test_contact_change_during_push_is_pushed_next_run(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    add_contact(app_context, "ada@example.org", events=confirmed(), first_name="Ada")

    def change_meanwhile(_request: object) -> None:
        change_first_name(app_context, "ada@example.org", "Changed")

    emulator.set_hook(change_meanwhile, match=r"^POST /3\.0/lists/[^/]+$", times=1)
    sync()
    second = sync()

    assert emulator.member("ada@example.org")["merge_fields"]["FNAME"] == "Changed"  # type: ignore[index]
    assert second.updated == 1
    with transaction(app_context.sessions) as session:
        revision = session.scalar(select(Contact.revision))
        settled = session.scalar(select(PushState.settled_revision))
    assert settled == revision


def test_address_change_in_crm_renames_the_member(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    add_contact(app_context, "old@example.org", events=confirmed(), first_name="Ada")
    sync()
    with transaction(app_context.sessions) as session:
        contact = store.find_contact(session, "old@example.org")
        assert contact is not None
        contact.email_key = contact.email_display = "new@example.org"
        store.touch(contact)

    report = sync()

    assert [(m["email_address"], m["status"]) for m in emulator.members()] == [
        ("new@example.org", "subscribed")]
    assert report.updated == 1


def test_stop_finishes_the_batch_in_flight_and_returns_interrupted(
        app_context: AppContext, emulator: MailchimpEmulator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from syncd.sync import run
    from tests.sync.conftest import sync_settings

    monkeypatch.setattr(run, "READ_CHUNK", 5)
    ctx = AppContext(sync_settings(app_context.settings.database_url, emulator,
                                   mailchimp_batch_size=5), app_context.engine)
    for n in range(12):
        add_contact(ctx, f"p{n:02d}@example.org", events=confirmed())
    stop = threading.Event()
    # Shutdown is asked while the first batch call is at Mailchimp.
    emulator.set_hook(lambda _request: stop.set(), match=r"^POST /3\.0/lists/[^/]+$", times=1)

    report = run.run_sync(ctx, stop=stop, progress=lambda _done, _total: stop.wait(5))
    rest = run.run_sync(ctx)

    assert (report.outcome, report.added) == ("interrupted", 5)
    assert (rest.outcome, rest.added) == ("succeeded", 7)
