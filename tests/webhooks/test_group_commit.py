"""Group commit (syncd.webhooks.group_commit): deliveries applied together in one
transaction, each in its own savepoint, answered only after the one commit. A bad
delivery rolls back alone; a failed commit refuses every delivery and keeps nothing; two
deliveries for one person apply in arrival order; the chain head, taken once for the
batch, stays a valid chain when a delivery that moved it rolls back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from syncd.consent.chain_verify import verify
from syncd.context import AppContext
from syncd.webhooks import purge
from syncd.webhooks.group_commit import Delivery, GroupWriter, Result, receive_together
from syncd.webhooks.inbox import InboxUnavailable, Receipt
from syncd.webhooks.job import Job, Outcome
from syncd.webhooks.mailchimp_form import parse_body
from tests.builders import add_contact, confirmed
from tests.conftest import fixture_body
from tests.webhooks.conftest import inbox_rows
from tests.webhooks.snapshot import person

ADA, GRACE, ALAN = ("ada.lovelace@example.com", "grace.hopper@example.com",
                    "alan.turing@example.com")
ADA_KING = "ada.king@example.org"  # Ada's new address in upemail.form


def _unsubscribe(address: str, minute: int = 10) -> bytes:
    return (fixture_body("unsubscribe.form")
            .replace(b"ada.lovelace%40example.com", address.replace("@", "%40").encode())
            .replace(b"13%3A10%3A40", f"13%3A{minute:02d}%3A40".encode()))


def _deliveries(*bodies: bytes) -> list[Delivery]:
    return [Delivery(parse_body(b), b.decode(), time.monotonic() + 5) for b in bodies]


def _together(ctx: AppContext, *bodies: bytes) -> list[Result]:
    return receive_together(ctx.sessions, _deliveries(*bodies), settings=ctx.settings,
                            keyring=lambda: ctx.keyring)


def _statuses(results: list[Result]) -> list[str]:
    return [r.status if isinstance(r, Receipt) else "refused" for r in results]


def _three_on_the_list(ctx: AppContext) -> None:
    for address in (ADA, GRACE, ALAN):
        add_contact(ctx, address, events=confirmed(), lists=["newsletter-nl"])


def _chain_ok(ctx: AppContext) -> None:
    with ctx.sessions() as session:
        verdict = verify(session)
    assert verdict.ok, verdict.problem


@pytest.fixture
def grace_breaks_after_her_purge(app_context: AppContext,
                                 monkeypatch: pytest.MonkeyPatch
                                 ) -> Callable[[Exception], None]:
    """Grace's purge raises `error` after all its writes (the head moved too)."""

    def install(error: Exception) -> None:
        real = purge.withdraw_event

        def breaking(job: Job) -> Outcome:
            outcome = real(job)
            if job.event.email == GRACE:
                raise error
            return outcome

        monkeypatch.setattr(purge, "withdraw_event", breaking)

    return install


def test_a_failing_delivery_rolls_back_alone_and_is_kept_as_failed(
        app_context: AppContext, grace_breaks_after_her_purge: Callable[[Exception], None]
) -> None:
    _three_on_the_list(app_context)
    grace_breaks_after_her_purge(RuntimeError("a bug after the purge's writes"))

    results = _together(app_context, _unsubscribe(ADA), _unsubscribe(GRACE),
                        _unsubscribe(ALAN))

    assert _statuses(results) == ["applied", "failed", "applied"]
    assert person(app_context, ADA).lists == person(app_context, ALAN).lists == ()
    assert person(app_context, GRACE).lists == ("newsletter-nl",)
    assert person(app_context, GRACE).withdrawals == ()
    assert [r.status for r in inbox_rows(app_context)] == ["applied", "failed", "applied"]
    _chain_ok(app_context)


def test_a_busy_delivery_is_refused_alone_and_nothing_of_it_is_kept(
        app_context: AppContext, grace_breaks_after_her_purge: Callable[[Exception], None]
) -> None:
    _three_on_the_list(app_context)
    # A lock timeout, say: the database is busy, not broken.
    grace_breaks_after_her_purge(OperationalError("lock timeout", None, Exception()))

    results = _together(app_context, _unsubscribe(ADA), _unsubscribe(GRACE),
                        _unsubscribe(ALAN))

    assert _statuses(results) == ["applied", "refused", "applied"]
    assert person(app_context, GRACE).lists == ("newsletter-nl",)
    assert len(inbox_rows(app_context)) == 2
    _chain_ok(app_context)


def test_an_unappliable_delivery_is_parked_and_the_others_apply(
        app_context: AppContext) -> None:
    _three_on_the_list(app_context)
    add_contact(app_context, ADA_KING, events=confirmed())  # the rename cannot apply

    results = _together(app_context, _unsubscribe(GRACE), fixture_body("upemail.form"),
                        _unsubscribe(ALAN))

    assert _statuses(results) == ["applied", "parked", "applied"]
    assert person(app_context, GRACE).lists == person(app_context, ALAN).lists == ()


def test_a_failed_commit_refuses_every_delivery_and_keeps_nothing(
        app_context: AppContext) -> None:
    _three_on_the_list(app_context)

    def refuse(_conn: Any) -> None:
        raise RuntimeError("commit failed")

    event.listen(app_context.engine, "commit", refuse)
    try:
        results = _together(app_context, _unsubscribe(ADA), _unsubscribe(GRACE))
    finally:
        event.remove(app_context.engine, "commit", refuse)

    assert all(isinstance(r, InboxUnavailable) for r in results)
    assert inbox_rows(app_context) == []
    assert person(app_context, ADA).lists == ("newsletter-nl",)
    assert person(app_context, ADA).withdrawals == ()


def test_two_deliveries_for_one_person_apply_in_arrival_order(
        app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])

    # The rename first: the unsubscribe of the new address then finds Ada.
    results = _together(app_context, fixture_body("upemail.form"), _unsubscribe(ADA_KING))

    assert _statuses(results) == ["applied", "applied"]
    ada = person(app_context, ADA_KING)
    assert ada.lists == ()
    assert len(ada.withdrawals) == 1


def test_the_same_delivery_twice_in_a_batch_is_applied_once(
        app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])

    results = _together(app_context, _unsubscribe(ADA), _unsubscribe(ADA))

    assert _statuses(results) == ["applied", "duplicate"]
    assert len(person(app_context, ADA).withdrawals) == 1


@pytest.fixture
def statements(app_context: AppContext) -> Iterator[list[str]]:
    """Every statement the engine sends from here on."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(app_context.engine, "before_cursor_execute", record)
    yield sent
    event.remove(app_context.engine, "before_cursor_execute", record)


def _three_unsubscribed_together(app_context: AppContext, statements: list[str]) -> None:
    """Three on the list, then their unsubscribes in one batch, each applied; `statements`
    holds only the batch's."""
    _three_on_the_list(app_context)
    statements.clear()
    results = _together(app_context, _unsubscribe(ADA), _unsubscribe(GRACE),
                        _unsubscribe(ALAN))
    assert _statuses(results) == ["applied"] * 3


def test_a_batch_takes_the_chain_head_once_and_the_chain_verifies(
        app_context: AppContext, statements: list[str]) -> None:
    _three_unsubscribed_together(app_context, statements)
    assert len([s for s in statements if "FROM ledger_chain_head" in s]) == 1
    _chain_ok(app_context)


# Per batch: the deadline's setup, the contacts' lock (PostgreSQL) or BEGIN IMMEDIATE and
# its busy timeout (SQLite), the head; per delivery the rest (one inbox insert, one read,
# member state, revision bump, and on PostgreSQL the one write; SQLite writes one
# statement per table). A single delivery alone: test_purge_round_trips.
PER_BATCH = 3
PER_DELIVERY = {"postgresql": 5, "sqlite": 10}


def test_a_batch_of_unsubscribes_costs_its_setup_once(
        app_context: AppContext, statements: list[str]) -> None:
    _three_unsubscribed_together(app_context, statements)
    most = PER_BATCH + 3 * PER_DELIVERY[app_context.engine.dialect.name]
    assert len(statements) <= most, statements


def test_a_delivery_out_of_time_is_refused_without_touching_the_others(
        app_context: AppContext) -> None:
    _three_on_the_list(app_context)
    late, on_time = _deliveries(_unsubscribe(ADA), _unsubscribe(GRACE))
    late = Delivery(late.event, late.body, time.monotonic())

    results = receive_together(app_context.sessions, [late, on_time],
                               settings=app_context.settings,
                               keyring=lambda: app_context.keyring)

    assert _statuses(results) == ["refused", "applied"]
    assert person(app_context, ADA).lists == ("newsletter-nl",)


def test_the_writer_answers_every_queued_delivery_with_its_receipt(
        app_context: AppContext) -> None:
    _three_on_the_list(app_context)
    writer = GroupWriter(app_context.sessions, settings=app_context.settings,
                         keyring=lambda: app_context.keyring)

    waiting = [writer.submit(d) for d in _deliveries(
        _unsubscribe(ADA), _unsubscribe(GRACE), _unsubscribe(ALAN))]

    assert [f.result(timeout=30).status for f in waiting] == ["applied"] * 3
    assert [r.status for r in inbox_rows(app_context)] == ["applied"] * 3


def test_on_postgresql_a_batch_locks_its_contacts_before_the_chain_head(
        app_context: AppContext, statements: list[str]) -> None:
    if app_context.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers; no row locks there")
    _three_on_the_list(app_context)
    statements.clear()

    _together(app_context, _unsubscribe(ADA), _unsubscribe(GRACE), _unsubscribe(ALAN))

    locks = [i for i, s in enumerate(statements) if s.rstrip().endswith("FOR UPDATE")]
    head = next(i for i in locks if "FROM ledger_chain_head" in statements[i])
    assert [i for i in locks if "FROM contacts" in statements[i]] == [locks[0]]
    assert locks[0] < head


def test_writers_at_once_apply_every_delivery_on_one_chain(app_context: AppContext) -> None:
    addresses = [f"person{i}@example.com" for i in range(12)]
    for address in addresses:
        add_contact(app_context, address, events=confirmed(), lists=["newsletter-nl"])
    writer = GroupWriter(app_context.sessions, settings=app_context.settings,
                         keyring=lambda: app_context.keyring, max_batch=2, writers=3)

    waiting = [writer.submit(d) for d in _deliveries(*map(_unsubscribe, addresses))]

    assert [f.result(timeout=30).status for f in waiting] == ["applied"] * len(addresses)
    _chain_ok(app_context)
