"""Reconciliation: what no webhook brought is found and purged; overlapping runs and
webhooks that did arrive apply nothing twice; the cursor moves only after applying."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import select

from mailchimp_emulator import MailchimpEmulator, RequestInfo
from syncd.clock import parse_timestamp
from syncd.context import AppContext
from syncd.db import transaction
from syncd.esp.errors import EspError
from syncd.inbound.reconcile import cursor_name, run_reconcile
from syncd.runner_lock import RunnerBusy, single_runner
from syncd.schema import Cursor, SyncRun
from syncd.webhooks.registration import register
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID, TEST_WEBHOOK_SECRET, make_settings
from tests.reconcile.conftest import Cli
from tests.webhooks.conftest import Served
from tests.webhooks.snapshot import person, suppressions

ADA = "ada.lovelace@example.com"
GRACE = "grace.hopper@example.com"


def _cursor(ctx: AppContext) -> str | None:
    with transaction(ctx.sessions) as session:
        row = session.get(Cursor, cursor_name(TEST_AUDIENCE_ID))
        return row.value if row else None


def _register(ctx: AppContext, served: Served) -> None:
    from syncd.esp.mailchimp import mailchimp_client

    client = mailchimp_client(ctx.settings)
    try:
        register(client, served.url(), [TEST_WEBHOOK_SECRET])
    finally:
        client.close()


def _subscribed(ctx: AppContext, emu: MailchimpEmulator, *emails: str) -> None:
    for email in emails:
        add_contact(ctx, email, events=confirmed(), lists=["newsletter-nl", "offers"])
        emu.seed_member(email, "subscribed")


def test_lost_unsubscribe_is_found_and_purged(emulated_context: AppContext,
                                              emulator: MailchimpEmulator) -> None:
    _subscribed(emulated_context, emulator, ADA, GRACE)
    emulator.fire_unsubscribe(ADA, deliver=False)  # the webhook is lost
    report = run_reconcile(emulated_context)
    assert (report.outcome, report.full_pull, report.applied) == ("succeeded", True, 1)
    state = person(emulated_context, ADA)
    assert state.lists == ("offers",)
    assert [w[0] for w in state.withdrawals] == ["reconciliation"]
    assert "newsletter" in suppressions(emulated_context, ADA)
    assert person(emulated_context, GRACE).lists == ("newsletter-nl", "offers")


def test_lost_abuse_complaint_is_an_objection(emulated_context: AppContext,
                                              emulator: MailchimpEmulator) -> None:
    _subscribed(emulated_context, emulator, ADA)
    emulator.fire_unsubscribe(ADA, reason="abuse", deliver=False)
    run_reconcile(emulated_context)
    assert person(emulated_context, ADA).lists == ()
    assert set(suppressions(emulated_context, ADA)) == {"*"}


def test_lost_hard_bounce_marks_undeliverable(emulated_context: AppContext,
                                              emulator: MailchimpEmulator) -> None:
    _subscribed(emulated_context, emulator, ADA)
    emulator.fire_cleaned(ADA, deliver=False)
    assert run_reconcile(emulated_context).applied == 1
    state = person(emulated_context, ADA)
    assert state.undeliverable
    assert state.lists == ("offers",)


def test_second_run_applies_nothing_new(emulated_context: AppContext,
                                        emulator: MailchimpEmulator) -> None:
    _subscribed(emulated_context, emulator, ADA)
    emulator.fire_unsubscribe(ADA, deliver=False)
    run_reconcile(emulated_context)
    once = person(emulated_context, ADA)
    again = run_reconcile(emulated_context)
    # Known unsubscribed at that last_changed: no move, so nothing is even re-stored.
    assert (again.full_pull, again.applied, again.seen_moves) == (False, 0, 0)
    assert person(emulated_context, ADA) == once


def test_cursor_is_the_newest_last_changed_seen(emulated_context: AppContext,
                                                emulator: MailchimpEmulator) -> None:
    _subscribed(emulated_context, emulator, ADA, GRACE)
    emulator.fire_unsubscribe(ADA, deliver=False)
    emulator.fire_cleaned(GRACE, deliver=False)
    run_reconcile(emulated_context)
    newest = max(parse_timestamp(m["last_changed"]) for m in emulator.members())
    cursor = _cursor(emulated_context)
    assert cursor is not None
    assert parse_timestamp(cursor) == newest


def test_cursor_does_not_move_when_a_page_fails(emulated_context: AppContext,
                                                emulator: MailchimpEmulator) -> None:
    _subscribed(emulated_context, emulator, ADA, GRACE)
    emulator.fire_unsubscribe(ADA, deliver=False)
    emulator.fire_cleaned(GRACE, deliver=False)

    def second_page_fails(request: RequestInfo) -> None:
        if request.query.get("offset") == ["1"]:
            raise RuntimeError("page read fails")

    emulator.set_hook(second_page_fails, match=r"^GET .*/members$")
    with pytest.raises(EspError):
        run_reconcile(emulated_context, page_size=1)
    assert _cursor(emulated_context) is None
    assert person(emulated_context, ADA).lists == ("offers",)  # applied before the failure
    emulator.clear_faults()
    report = run_reconcile(emulated_context)
    # Ada's move was recorded with her state: only Grace's is news the second time.
    assert (report.full_pull, report.applied, report.seen_moves) == (True, 1, 1)
    assert _cursor(emulated_context) is not None
    with transaction(emulated_context.sessions) as session:
        outcomes = list(session.scalars(select(SyncRun.outcome).order_by(SyncRun.id)))
    assert outcomes == ["failed", "succeeded"]


def test_stopped_run_leaves_the_cursor(emulated_context: AppContext,
                                       emulator: MailchimpEmulator) -> None:
    _subscribed(emulated_context, emulator, ADA)
    emulator.fire_unsubscribe(ADA, deliver=False)
    stop = threading.Event()
    stop.set()
    assert run_reconcile(emulated_context, stop=stop).outcome == "interrupted"
    assert _cursor(emulated_context) is None


def test_webhook_and_reconciliation_write_one_withdrawal(
        emulated_context: AppContext, emulator: MailchimpEmulator,
        served_for: Callable[[AppContext], Served]) -> None:
    _subscribed(emulated_context, emulator, ADA)
    _register(emulated_context, served_for(emulated_context))
    [delivery] = emulator.fire_unsubscribe(ADA)
    assert delivery.status == 200
    report = run_reconcile(emulated_context)
    assert (report.applied, report.unchanged) == (0, 1)
    assert [w[0] for w in person(emulated_context, ADA).withdrawals] == ["esp_webhook"]


def test_outage_longer_than_mailchimp_retries_loses_nothing(
        database_url: str, emulated_context: AppContext, emulator: MailchimpEmulator,
        served_for: Callable[[AppContext], Served]) -> None:
    _subscribed(emulated_context, emulator, ADA)
    down = AppContext.open(make_settings("postgresql://postgres@127.0.0.1:1/syncd"))
    endpoint = served_for(down)
    _register(emulated_context, endpoint)
    [delivery] = emulator.fire_unsubscribe(ADA)
    assert delivery.status == 503  # every retry in the 75 minutes meets the same outage
    assert person(emulated_context, ADA).lists == ("newsletter-nl", "offers")
    run_reconcile(emulated_context)
    assert person(emulated_context, ADA).lists == ("offers",)


def test_lock_held_means_busy(emulated_context: AppContext) -> None:
    with single_runner(emulated_context.engine, f"reconcile:{TEST_AUDIENCE_ID}"), \
            pytest.raises(RunnerBusy):
        run_reconcile(emulated_context)


def test_cli_reconcile_json(cli: Cli, emulated_context: AppContext,
                            emulator: MailchimpEmulator) -> None:
    _subscribed(emulated_context, emulator, ADA)
    emulator.fire_unsubscribe(ADA, deliver=False)
    result = cli("reconcile", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["outcome"], report["applied"]) == ("succeeded", 1)
    assert "ada.lovelace" not in result.output


def test_cli_reconcile_busy_exit_code(cli: Cli, emulated_context: AppContext) -> None:
    with single_runner(emulated_context.engine, f"reconcile:{TEST_AUDIENCE_ID}"):
        result = cli("reconcile")
    assert result.exit_code == 5
    assert "another reconcile run" in result.output
