"""ESP faults mid-batch, per-member refusals, run-level errors and I8 (checkpoint only
after the ESP confirmed), on both databases against the emulator."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mailchimp_emulator import MailchimpEmulator
from syncd.clock import utcnow
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.db import transaction
from syncd.esp.errors import EspConfigurationError, EspTransientError
from syncd.runner_lock import RunnerBusy, single_runner
from syncd.schema import PushState, SyncRun
from syncd.sync.run import run_sync
from tests.builders import add_contact, change_first_name, confirmed
from tests.conftest import TEST_AUDIENCE_ID
from tests.sync.conftest import sync_settings

BATCH_PATH = r"^POST /3\.0/lists/[^/]+$"


def _context(database_url: str, emu: MailchimpEmulator, **overrides: object) -> AppContext:
    ctx = AppContext.open(sync_settings(database_url, emu, mailchimp_batch_size=5, **overrides))
    ctx.sync_lists()
    return ctx


def _people(ctx: AppContext, count: int) -> list[str]:
    emails = [f"p{n:02d}@example.org" for n in range(count)]
    for email in emails:
        add_contact(ctx, email, events=confirmed(), lists=["newsletter-nl"])
    return emails


def _settled(ctx: AppContext) -> dict[int, str | None]:
    with transaction(ctx.sessions) as session:
        rows = session.execute(select(PushState.contact_id, PushState.esp_status).where(
            PushState.settled_revision > 0)).all()
        return {row[0]: row[1] for row in rows}


@pytest.mark.parametrize("kind", ["429", "403_bodyless", "500", "reset", "slow"])
def test_fault_mid_batch_is_retried_and_converges(
        database_url: str, emulator: MailchimpEmulator, kind: str) -> None:
    ctx = _context(database_url, emulator, mailchimp_timeout_seconds=0.5)
    emails = _people(ctx, 12)
    emulator.inject_fault(kind, count=2, match=BATCH_PATH, seconds=1.0)  # type: ignore[arg-type]

    report = run_sync(ctx)
    emulator.reset_stats()
    again = run_sync(ctx)
    ctx.close()

    assert sorted(m["email_address"] for m in emulator.members("subscribed")) == emails
    assert report.added + report.adopted == 12
    assert (report.failed, again.write_calls, emulator.stats.write_calls) == (0, 0, 0)


def test_refused_members_are_parked_and_the_rest_of_the_batch_lands(
        database_url: str, emulator: MailchimpEmulator) -> None:
    ctx = _context(database_url, emulator)
    run_sync(ctx)  # the first run's audience pull: the member below arrives after it
    emulator.seed_member("gone@example.org", "archived", status_before_archive="unsubscribed")
    emulator.configure(refused_addresses=["fake@example.org"])
    add_contact(ctx, "gone@example.org", events=confirmed())
    add_contact(ctx, "fake@example.org", events=confirmed())
    _people(ctx, 3)

    report = run_sync(ctx)

    with transaction(ctx.sessions) as session:
        reasons = sorted(session.scalars(select(PushState.parked_reason).where(
            PushState.parked_reason.is_not(None))))
    ctx.close()
    assert (report.added, report.parked) == (3, 2)
    assert "looks fake or invalid" in reasons[0]
    assert "Member In Compliance State" in reasons[1]
    assert all("@" not in reason for reason in reasons)


def test_parked_contact_stays_parked_until_it_changes(
        database_url: str, emulator: MailchimpEmulator) -> None:
    ctx = _context(database_url, emulator)
    emulator.configure(refused_addresses=["fake@example.org"])
    add_contact(ctx, "fake@example.org", events=confirmed(), first_name="F")
    run_sync(ctx)
    emulator.reset_stats()

    unchanged = run_sync(ctx)
    change_first_name(ctx, "fake@example.org", "G")
    changed = run_sync(ctx)
    ctx.close()

    assert (unchanged.considered, unchanged.write_calls) == (0, 0)
    assert (changed.considered, changed.parked, changed.write_calls) == (1, 1, 1)


def test_bad_api_key_fails_loudly_and_marks_nothing(
        database_url: str, emulator: MailchimpEmulator) -> None:
    ctx = _context(database_url, emulator,
                   mailchimp_api_key="00000000000000000000000000000000-us1")
    _people(ctx, 3)

    with pytest.raises(EspConfigurationError, match="SYNCD_MAILCHIMP_API_KEY"):
        run_sync(ctx)

    with transaction(ctx.sessions) as session:
        states = session.scalar(select(func.count()).select_from(PushState))
        outcome = session.scalar(select(SyncRun.outcome))
    ctx.close()
    assert (states, outcome) == (0, "failed")
    assert emulator.stats.write_calls == 0


def test_unknown_audience_fails_loudly_naming_the_setting(
        database_url: str, emulator: MailchimpEmulator) -> None:
    ctx = _context(database_url, emulator, mailchimp_audience_id="0000000000")
    _people(ctx, 1)

    with pytest.raises(EspConfigurationError, match="SYNCD_MAILCHIMP_AUDIENCE_ID"):
        run_sync(ctx)
    ctx.close()

    assert emulator.members() == []


def test_nothing_is_checkpointed_before_the_esp_confirmed_it(
        database_url: str, emulator: MailchimpEmulator) -> None:
    ctx = _context(database_url, emulator, mailchimp_max_retries=1)
    emails = _people(ctx, 12)
    calls: list[int] = []

    def fail_after_two_batches(_request: object) -> None:
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("injected")  # the emulator answers 500

    emulator.set_hook(fail_after_two_batches, match=BATCH_PATH)
    with pytest.raises(EspTransientError):
        run_sync(ctx)
    settled = _settled(ctx)
    at_esp = {m["email_address"] for m in emulator.members()}
    emulator.clear_faults()
    final = run_sync(ctx)
    with transaction(ctx.sessions) as session:
        by_id = dict(session.execute(select(PushState.contact_id, PushState.esp_email)).all())
    ctx.close()

    assert len(at_esp) in (7, 10)  # two of the batches (5, 5, 2) landed, one failed
    assert {by_id[cid] for cid in settled} <= at_esp  # every checkpoint was confirmed
    assert sorted(m["email_address"] for m in emulator.members("subscribed")) == emails
    assert final.added + final.adopted == 12 - len(at_esp)


def test_second_runner_is_refused_at_once(database_url: str,
                                          emulator: MailchimpEmulator) -> None:
    ctx = _context(database_url, emulator)

    with single_runner(ctx.engine, f"sync:{TEST_AUDIENCE_ID}"), pytest.raises(RunnerBusy):
        run_sync(ctx)
    ctx.close()


def test_foreign_member_gets_data_but_never_a_status_when_managed(
        database_url: str, emulator: MailchimpEmulator) -> None:
    ctx = _context(database_url, emulator, mailchimp_manage_foreign_members=True)
    run_sync(ctx)  # the first run's audience pull: the member below arrives after it
    emulator.configure(allow_api_resubscribe=True)
    emulator.seed_member("ada@example.org", "unsubscribed")
    add_contact(ctx, "ada@example.org", events=confirmed(), first_name="Ada",
                lists=["newsletter-nl"])

    report = run_sync(ctx)
    ctx.close()

    member = emulator.member("ada@example.org")
    assert member is not None
    assert (member["status"], member["merge_fields"]["FNAME"]) == ("unsubscribed", "Ada")
    assert [t["name"] for t in member["tags"]] == ["newsletter-nl"]
    assert report.adopted == 1


def test_an_add_that_landed_after_its_call_timed_out_is_known_as_ours(
        database_url: str, emulator: MailchimpEmulator) -> None:
    # Attempt 1 times out at the client (0.5 s) but lands at Mailchimp (0.6 s); attempt 2
    # times out too; attempt 3 then finds every member already there. They are our own
    # adds: a later withdrawal in the CRM must unsubscribe them (rule 5), which syncd
    # only does for members it knows it added.
    ctx = _context(database_url, emulator, mailchimp_timeout_seconds=0.5)
    emails = _people(ctx, 5)
    emulator.inject_fault("slow", count=2, match=BATCH_PATH, seconds=0.6)

    report = run_sync(ctx)
    assert report.added + report.adopted == 5
    assert set(_settled(ctx).values()) == {"subscribed"}

    add_contact(ctx, emails[0], events=[("newsletter", Action.WITHDRAWN, utcnow())])
    run_sync(ctx, force=True)  # 1 of 5 is over the 10 % safety share
    ctx.close()
    member = emulator.member(emails[0])
    assert member is not None
    assert member["status"] == "unsubscribed"
