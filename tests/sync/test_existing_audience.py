"""An audience that already had members before syncd (rule 12, I2, I11, I12): the first
sync reads it, and from then on those members are treated like the ones syncd added."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy import select

from mailchimp_emulator import MailchimpEmulator, RequestInfo
from syncd.clock import utcnow
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import PushState
from tests.builders import (
    add_contact,
    at,
    change_first_name,
    confirm_now,
    confirmed,
    push_state,
    withdraw_now,
)
from tests.conftest import opened
from tests.sync.conftest import Syncer, sync_settings


def _states(ctx: AppContext) -> dict[str, tuple[str | None, str | None]]:
    with transaction(ctx.sessions) as session:
        return {s.esp_email or "": (s.esp_status, s.esp_origin)
                for s in session.scalars(select(PushState))}


def test_first_sync_reads_the_audience_and_records_only_members_matching_a_contact(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    emulator.seed_member("ada@example.org", "subscribed", timestamp_opt="2020-01-02T03:04:05+00:00",
                         ip_opt="203.0.113.9")
    emulator.seed_member("stranger@example.org", "subscribed")
    add_contact(app_context, "ada@example.org", lists=["newsletter-nl"])

    report = sync()

    assert report.audience_pulled
    assert _states(app_context) == {"ada@example.org": ("subscribed", "pulled")}
    state = push_state(app_context)
    assert (state.esp_opt_ip, state.esp_opt_at is not None, state.esp_last_changed is not None
            ) == ("203.0.113.9", True, True)


def test_the_pull_reads_every_status_in_pages_of_1000_with_only_the_fields_it_needs(
        app_context: AppContext, emulator: MailchimpEmulator) -> None:
    for n in range(2100):
        emulator.seed_member(f"m{n}@example.org", "subscribed" if n % 3 else "unsubscribed")
    emulator.seed_member("old@example.org", "archived", status_before_archive="subscribed")
    add_contact(app_context, "old@example.org", events=confirmed())
    seen: list[dict[str, list[str]]] = []
    emulator.set_hook(lambda request: seen.append(request.query), match=r"^GET .*/members$")

    from syncd.sync.audience_pull import run_pull

    report = run_pull(app_context)

    assert (report.seen, report.matched, report.unmatched) == (2101, 1, 2100)
    # ceil(2100 / 1000) = 3 pages of the listing, 1 of the archived pass.
    assert len(seen) == 4
    assert all(q["count"] == ["1000"] and "members.status" in q["fields"][0] for q in seen)
    assert [q.get("status") for q in seen][-1] == ["archived"]
    assert _states(app_context) == {"old@example.org": ("archived", "pulled")}


def test_crm_withdrawal_of_a_member_who_was_there_before_syncd_reaches_mailchimp(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    emulator.seed_member("ada@example.org", "subscribed")
    add_contact(app_context, "ada@example.org", events=confirmed(), lists=["newsletter-nl"])
    sync()
    withdraw_now(app_context, "ada@example.org")

    report = sync()

    assert emulator.member("ada@example.org")["status"] == "unsubscribed"  # type: ignore[index]
    assert report.unsubscribed == 1


def test_consenting_pre_existing_member_gets_data_by_patch_and_never_a_status(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    emulator.configure(allow_api_resubscribe=True)
    emulator.seed_member("ada@example.org", "subscribed")
    add_contact(app_context, "ada@example.org", events=confirmed(), first_name="Ada",
                lists=["newsletter-nl"])
    writes: list[RequestInfo] = []
    emulator.set_hook(writes.append, match=r"^(PUT|PATCH|POST) ")

    report = sync()

    member = emulator.member("ada@example.org")
    assert member is not None
    assert (member["status"], member["merge_fields"]["FNAME"]) == ("subscribed", "Ada")
    assert report.updated == 1
    assert [w.method for w in writes if w.path.endswith("/tags") is False] == ["PATCH"]
    assert all("status" not in (w.body or {}) for w in writes)


def test_member_who_left_before_syncd_and_confirms_again_is_sent_pending_once(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    emulator.seed_member("ada@example.org", "unsubscribed")
    add_contact(app_context, "ada@example.org", events=confirmed())
    sync()  # learns the unsubscribe
    confirm_now(app_context, "ada@example.org")

    first = sync()
    again = sync()

    assert emulator.member("ada@example.org")["status"] == "pending"  # type: ignore[index]
    assert emulator.confirmation_mails_sent("ada@example.org") == 1
    assert (first.reconsent_pending, again.write_calls) == (1, 0)


def test_update_after_a_lost_address_change_never_creates_a_member_at_the_old_address(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    add_contact(app_context, "old@example.org", events=confirmed(), first_name="Ada")
    sync()
    emulator.fire_upemail("old@example.org", "new@example.org", deliver=False)  # lost
    change_first_name(app_context, "old@example.org", "Adaline")

    report = sync()
    sync()

    assert [(m["email_address"], m["status"]) for m in emulator.members()] == [
        ("new@example.org", "subscribed")]
    assert report.skipped == {"member_missing": 1}


def test_address_change_racing_the_sync_leaves_no_live_member_at_the_old_address(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    add_contact(app_context, "old@example.org", events=confirmed(), first_name="Ada")
    sync()
    change_first_name(app_context, "old@example.org", "Adaline")

    def renamed_meanwhile(_request: RequestInfo) -> None:
        emulator.fire_upemail("old@example.org", "new@example.org", deliver=False)

    emulator.set_hook(renamed_meanwhile, match=r"^(PUT|PATCH) ", times=1)
    sync()
    emulator.fire_unsubscribe("new@example.org", deliver=False)  # the person leaves
    sync()

    live = [m["email_address"] for m in emulator.members() if m["status"] == "subscribed"]
    assert live == []


def test_one_crm_withdrawal_is_never_held_by_the_safety_limit_of_a_small_audience(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    for email in ("a@example.org", "b@example.org"):
        add_contact(app_context, email, events=confirmed())
    sync()
    withdraw_now(app_context, "a@example.org")

    report = sync()

    assert (report.outcome, report.unsubscribed) == ("succeeded", 1)


def test_a_refused_plan_sends_adds_and_updates_and_holds_only_the_unsubscribes(
        database_url: str, emulator: MailchimpEmulator) -> None:
    with opened(sync_settings(database_url, emulator, sync_unsubscribe_floor=2)) as ctx:
        sync = Syncer(ctx)
        for n in range(10):
            add_contact(ctx, f"p{n}@example.org", events=confirmed(), first_name="P")
        sync()
        for n in range(3):
            withdraw_now(ctx, f"p{n}@example.org")
        add_contact(ctx, "new@example.org", events=confirmed())
        add_contact(ctx, "p9@example.org", first_name="Changed")

        held = sync()
        still = sync()
        released = sync(force=True)

    assert (held.outcome, held.held_unsubscribes, held.added, held.updated) == (
        "refused", 3, 1, 1)
    assert "held" in (held.error or "")
    assert (still.outcome, still.held_unsubscribes, still.write_calls) == ("refused", 3, 0)
    assert (released.outcome, released.unsubscribed) == ("succeeded", 3)
    assert len(emulator.members("unsubscribed")) == 3
    assert REGISTRY.get_sample_value("syncd_sync_unsubscribes_held",
                                     {"audience": emulator.list_id}) == 0


def test_withdrawal_to_mailchimp_latency_is_measured(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    add_contact(app_context, "ada@example.org", events=confirmed())
    sync()
    before = REGISTRY.get_sample_value("syncd_withdrawal_to_esp_seconds_count") or 0
    withdraw_now(app_context, "ada@example.org")

    sync()

    assert REGISTRY.get_sample_value("syncd_withdrawal_to_esp_seconds_count") == before + 1


def test_reconsent_after_a_mailchimp_unsubscribe_goes_pending_whatever_the_order(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    from syncd.inbound.reconcile import run_reconcile

    for email in ("first@example.org", "second@example.org"):
        add_contact(app_context, email, events=confirmed(days=0))
    sync()
    run_reconcile(app_context)  # the cursor: the next runs read only what changed
    emulator.fire_unsubscribe("first@example.org", deliver=False)
    emulator.fire_unsubscribe("second@example.org", deliver=False)
    run_reconcile(app_context)  # learnt before the re-consent is imported
    confirm_now(app_context, "first@example.org")
    confirm_now(app_context, "second@example.org")

    report = sync()

    assert report.reconsent_pending == 2
    assert {m["status"] for m in emulator.members()} == {"pending"}


def test_a_reconsent_imported_before_mailchimp_unsubscribe_is_learnt_still_goes_pending(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    from syncd.inbound.reconcile import run_reconcile

    add_contact(app_context, "ada@example.org", events=confirmed(days=0))
    sync()
    emulator.fire_unsubscribe("ada@example.org", deliver=False)
    confirm_now(app_context, "ada@example.org")  # confirmed after the unsubscribe...
    run_reconcile(app_context)  # ...which syncd learns only now

    report = sync()

    assert report.reconsent_pending == 1
    assert emulator.member("ada@example.org")["status"] == "pending"  # type: ignore[index]


def test_stale_consent_dated_before_a_pulled_unsubscribe_is_not_sent(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    emulator.configure(allow_api_resubscribe=True)
    emulator.seed_member("ada@example.org", "unsubscribed")
    add_contact(app_context, "ada@example.org", events=confirmed(days=0))  # at(0): older

    report = sync()

    assert emulator.member("ada@example.org")["status"] == "unsubscribed"  # type: ignore[index]
    assert emulator.confirmation_mails_sent("ada@example.org") == 0
    assert at(0) < utcnow()
    assert report.write_calls == 0


def test_a_member_found_by_an_add_after_the_pull_is_known_and_its_withdrawal_reaches_it(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    sync()  # the pull of an empty audience
    emulator.seed_member("ada@example.org", "subscribed")  # joined at Mailchimp since
    add_contact(app_context, "ada@example.org", events=confirmed())
    found = sync()  # the add answers "exists": syncd reads the member, writes its data
    withdraw_now(app_context, "ada@example.org")

    report = sync()

    assert (found.adopted, found.added) == (1, 0)
    assert report.unsubscribed == 1
    assert emulator.member("ada@example.org")["status"] == "unsubscribed"  # type: ignore[index]


def test_withdrawal_of_a_contact_imported_after_the_pull_reaches_its_existing_member(
        app_context: AppContext, sync: Syncer, emulator: MailchimpEmulator) -> None:
    sync()  # the pull: no contacts yet, so the member below matched nothing
    emulator.seed_member("ada@example.org", "subscribed")
    # The CRM contact arrives later, already withdrawn: never added by syncd, yet a
    # member of the audience all along (I11: whoever added them).
    add_contact(app_context, "ada@example.org",
                events=[*confirmed(), ("newsletter", Action.WITHDRAWN, at(2))])
    add_contact(app_context, "never@example.org",
                events=[*confirmed(), ("newsletter", Action.WITHDRAWN, at(2))])

    report = sync()
    again = sync()

    assert emulator.member("ada@example.org")["status"] == "unsubscribed"  # type: ignore[index]
    assert emulator.member("never@example.org") is None  # a PATCH never creates
    assert (report.unsubscribed, again.write_calls) == (1, 0)
