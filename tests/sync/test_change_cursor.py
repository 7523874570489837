"""The sync's change cursor (syncd.store.candidates), end to end on both databases against
the emulator: a run after a complete run reads only the contacts marked since; what a
run leaves unsettled (held, retry-later, failed) is looked at again next run although it
did not change; an interrupted run leaves the cursor where it was; and on PostgreSQL a
transaction in flight across a run's floor is seen by the next run."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from mailchimp_emulator import MailchimpEmulator
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.db import transaction
from syncd.esp.errors import EspError
from syncd.schema import Contact, Cursor, PushState
from syncd.store import candidates, contacts
from syncd.sync.audience_pull import run_pull
from syncd.sync.run import run_sync
from tests.builders import add_contact, at, change_first_name, confirmed
from tests.conftest import TEST_AUDIENCE_ID, opened
from tests.sync.conftest import sync_settings
from tests.sync.test_sync_consent import _withdraw

BATCH_ADD = r"^POST /3\.0/lists/[^/]+$"


@pytest.fixture
def ctx(database_url: str, emulator: MailchimpEmulator) -> Iterator[AppContext]:
    with opened(sync_settings(database_url, emulator, mailchimp_max_retries=0)) as context:
        context.sync_lists()
        yield context


def narrowed(ctx: AppContext) -> candidates.Changes:
    """What the next run would read."""
    with ctx.sessions.begin() as session:
        return candidates.changes(session, TEST_AUDIENCE_ID)


def read_ids(ctx: AppContext, ids: tuple[int, ...] | None) -> set[int]:
    """The candidates' ids as the run reads them (`ids`: among these only)."""
    return {row[0] for chunk in candidates.chunks(
        ctx.engine, TEST_AUDIENCE_ID, ctx.keyring, chunk_size=3, purpose_lists=(), ids=ids)
        for row in chunk.rows}


def next_read(ctx: AppContext) -> set[int]:
    """The ids the next run reads: through the cursor (it must have one), then the chunks."""
    read = narrowed(ctx)
    assert read.ids is not None
    return read_ids(ctx, read.ids)


def stored_cursor(ctx: AppContext) -> str | None:
    with transaction(ctx.sessions) as session:
        return session.scalar(select(Cursor.value).where(
            Cursor.name == f"sync-changes:{TEST_AUDIENCE_ID}"))


def test_a_run_after_a_complete_run_with_no_change_reads_no_candidate(ctx: AppContext) -> None:
    for n in range(5):
        add_contact(ctx, f"p{n}@example.org", events=confirmed())
    run_sync(ctx)

    read = narrowed(ctx)
    found = read_ids(ctx, read.ids)
    second = run_sync(ctx)

    assert read.ids is not None
    assert found == set()
    assert (second.considered, second.write_calls) == (0, 0)


def test_on_sqlite_a_run_with_no_change_reads_not_one_contact(ctx: AppContext) -> None:
    if ctx.engine.dialect.name != "sqlite":
        # PostgreSQL re-reads what transactions in flight at the floor marked (any on
        # the server, other tests' too); the revision filter drops them.
        pytest.skip("SQLite's floor is exact")
    for n in range(3):
        add_contact(ctx, f"p{n}@example.org", events=confirmed())
    run_sync(ctx)

    assert narrowed(ctx).ids == ()


def test_a_change_after_a_complete_run_is_the_next_runs_whole_read(ctx: AppContext) -> None:
    add_contact(ctx, "a@example.org", events=confirmed())
    changed = add_contact(ctx, "b@example.org", events=confirmed())
    run_sync(ctx)
    change_first_name(ctx, "b@example.org", "Bea")

    read = narrowed(ctx)
    found = read_ids(ctx, read.ids)
    report = run_sync(ctx)

    assert read.ids is not None
    assert found == {changed}
    assert (report.considered, report.updated) == (1, 1)


def test_the_first_run_reads_every_contact_and_stores_its_floor(ctx: AppContext) -> None:
    add_contact(ctx, "a@example.org", events=confirmed())

    before = narrowed(ctx)
    run_sync(ctx)

    stored = stored_cursor(ctx)

    assert before.ids is None
    assert stored is not None
    assert int(stored) >= before.floor


def test_a_contact_held_by_the_safety_limit_is_planned_again_next_run(
        database_url: str, emulator: MailchimpEmulator) -> None:
    with opened(sync_settings(database_url, emulator, sync_unsubscribe_floor=0)) as ctx:
        ctx.sync_lists()
        for n in range(10):
            add_contact(ctx, f"p{n}@example.org", events=confirmed())
        run_sync(ctx)
        for n in range(3):
            _withdraw(ctx, f"p{n}@example.org", 10)
        refused = run_sync(ctx)

        again = run_sync(ctx)
        forced = run_sync(ctx, force=True)

    assert (refused.outcome, again.outcome, again.planned_unsubscribes) == (
        "refused", "refused", 3)
    assert forced.unsubscribed == 3


def test_a_contact_refused_for_recent_sign_ups_is_looked_at_again_next_run(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    emulator.configure(recent_signup_addresses=["ada@example.org"])
    try:
        ada = add_contact(ctx, "ada@example.org", events=confirmed())
        add_contact(ctx, "ben@example.org", events=confirmed())
        first = run_sync(ctx)
    finally:
        emulator.configure(recent_signup_addresses=[])

    found = next_read(ctx)

    assert first.parked == 1
    assert found == {ada}


def test_a_contact_whose_push_failed_is_pushed_by_the_next_run(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    run_sync(ctx)  # the audience pull: the runs below are incremental
    add_contact(ctx, "ada@example.org", events=confirmed())
    emulator.inject_fault("500", count=None, match=BATCH_ADD)
    with pytest.raises(EspError):
        run_sync(ctx)
    emulator.clear_faults()

    report = run_sync(ctx)

    assert (report.added, emulator.member("ada@example.org")["status"]) == (1, "subscribed")


def test_an_interrupted_run_leaves_the_cursor_where_it_was(ctx: AppContext) -> None:
    run_sync(ctx)
    kept = stored_cursor(ctx)
    ada = add_contact(ctx, "ada@example.org", events=confirmed())
    stop = threading.Event()
    stop.set()

    interrupted = run_sync(ctx, stop=stop)
    found = next_read(ctx)

    assert (interrupted.outcome, stored_cursor(ctx)) == ("interrupted", kept)
    assert ada in found


def test_a_dry_run_leaves_the_cursor_where_it_was(ctx: AppContext) -> None:
    run_sync(ctx)
    kept = stored_cursor(ctx)
    ada = add_contact(ctx, "ada@example.org", events=confirmed())

    run_sync(ctx, dry_run=True)
    found = next_read(ctx)

    assert stored_cursor(ctx) == kept
    assert ada in found


def test_an_insert_that_names_no_mark_still_gets_one(ctx: AppContext) -> None:
    # The migration's net under any bulk path that writes contacts' columns by name.
    with ctx.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO contacts (email_key, email_display, attributes, is_customer, "
            "created_at, updated_at, revision) VALUES ('raw@example.org', "
            "'raw@example.org', '{}', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)")
    with transaction(ctx.sessions) as session:
        mark = session.scalar(select(Contact.change_mark))

    assert mark is not None
    assert mark > 0


def test_a_postgresql_transaction_open_across_a_runs_floor_is_seen_next_run(
        ctx: AppContext) -> None:
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no write is open across a floor")
    ada = add_contact(ctx, "ada@example.org", events=[("newsletter", Action.GIVEN, at(0))])
    run_sync(ctx)
    with ctx.engine.connect() as other:
        open_tx = other.begin()
        writer = Session(bind=other)
        contacts.bump_revision(writer, ada, 1, at(0))  # written, not committed
        during = run_sync(ctx)  # takes its floor while that write is in flight
        open_tx.commit()
        writer.close()

    found = next_read(ctx)

    assert during.considered == 0
    assert found == {ada}


def test_a_member_the_audience_pull_finds_unsubscribed_is_planned_again_next_run(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    ada = add_contact(ctx, "ada@example.org", events=confirmed())
    run_sync(ctx)
    emulator.fire_unsubscribe("ada@example.org", deliver=False)  # the webhook lost

    run_pull(ctx)
    found = next_read(ctx)

    assert found == read_ids(ctx, None) == {ada}


def test_a_contact_whose_settled_revision_goes_down_is_read_again(ctx: AppContext) -> None:
    ada = add_contact(ctx, "ada@example.org", events=confirmed())
    run_sync(ctx)

    with ctx.engine.begin() as conn:  # as the audience pull does for a moved member
        conn.execute(update(PushState).values(settled_revision=0))
    found = next_read(ctx)

    assert found == {ada}


def test_a_contact_whose_push_state_is_deleted_is_read_again(ctx: AppContext) -> None:
    ada = add_contact(ctx, "ada@example.org", events=confirmed())
    run_sync(ctx)

    with ctx.engine.begin() as conn:
        conn.execute(delete(PushState))  # an operator's reset of what syncd knows
    found = next_read(ctx)

    assert found == {ada}


def backlog_and_full_count(ctx: AppContext) -> tuple[int, int]:
    """The status page's backlog (by the cursor), and the full scan's count of the same."""
    with ctx.sessions.begin() as session:
        by_cursor = candidates.backlog(session, TEST_AUDIENCE_ID)
    return by_cursor, candidates.count(ctx.engine, TEST_AUDIENCE_ID)


def test_the_status_backlog_by_the_cursor_counts_what_the_full_scan_counts(
        database_url: str, emulator: MailchimpEmulator) -> None:
    with opened(sync_settings(database_url, emulator, sync_unsubscribe_floor=0)) as ctx:
        ctx.sync_lists()
        for n in range(6):
            add_contact(ctx, f"p{n}@example.org", events=confirmed())
        before_any_run = backlog_and_full_count(ctx)
        run_sync(ctx)
        settled = backlog_and_full_count(ctx)
        change_first_name(ctx, "p5@example.org", "Renamed")
        changed = backlog_and_full_count(ctx)
        for n in range(3):
            _withdraw(ctx, f"p{n}@example.org", 10)
        run_sync(ctx)  # refused: the three unsubscribes are held, p5 is pushed
        held = backlog_and_full_count(ctx)

    assert (before_any_run, settled, changed, held) == ((6, 6), (0, 0), (1, 1), (3, 3))
