"""I4: no 2xx before the event is durably stored; a database outage is a fast 503; an
event that fails to apply is kept (all or nothing), retried, then parked with an alert,
and a parked unsubscribe keeps the person out of the push."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator

import pytest
import requests
from sqlalchemy import select

from mailchimp_emulator import MailchimpEmulator
from syncd import logs
from syncd.context import AppContext
from syncd.crm import suppression
from syncd.db import transaction
from syncd.metrics import INBOX_PARKED
from syncd.schema import WebhookEvent
from syncd.store import contacts
from syncd.sync.run import run_sync
from syncd.webhooks.inbox import retry_pending
from tests.builders import add_contact, confirmed
from tests.conftest import emulated_settings, make_settings
from tests.webhooks.conftest import Served, inbox_rows
from tests.webhooks.snapshot import person, suppressions

ADA = "ada.lovelace@example.com"


@pytest.fixture
def broken_purge_step(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """A bug in the last step of the purge (the revision bump, after the suppression and
    the ledger on both databases' paths; the suppression of an unknown address): everything
    before it must roll back."""

    def broken(*_args: object, **_kwargs: object) -> bool:
        raise RuntimeError("purge broke: ada.lovelace@example.com")

    monkeypatch.setattr(contacts, "bump_revision", broken)
    monkeypatch.setattr(suppression, "suppress", broken)
    return monkeypatch.undo


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:1/syncd",
                                 "sqlite:////nonexistent-dir/for/syncd.db"])
def test_database_down_is_a_503_and_the_validator_still_answers(
        served_for: Callable[[AppContext], Served], url: str) -> None:
    ctx = AppContext.open(make_settings(url))
    served = served_for(ctx)
    # Mailchimp gives up after 10 s; the answer must come well before.
    response = served.deliver("unsubscribe.form")
    assert response.status_code == 503
    assert b"ada" not in response.content
    assert requests.get(served.url(), timeout=8).status_code == 200


def test_failure_midway_rolls_back_every_effect_and_keeps_the_event(
        served: Served, app_context: AppContext, broken_purge_step: Callable[[], None]) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    response = served.deliver("unsubscribe.form")
    assert response.status_code == 200  # durably stored: retrying is our job now
    state = person(app_context, ADA)
    assert state.lists == ("newsletter-nl",)
    assert state.withdrawals == ()
    [row] = inbox_rows(app_context)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "RuntimeError")
    assert row.body is not None


def test_failed_event_is_applied_by_retry(served: Served, app_context: AppContext,
                                          broken_purge_step: Callable[[], None]) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")
    broken_purge_step()  # the bug is fixed
    assert retry_pending(app_context) == 1
    [row] = inbox_rows(app_context)
    assert (row.status, row.attempts) == ("applied", 2)
    assert person(app_context, ADA).lists == ()
    assert "newsletter" in suppressions(app_context, ADA)
    assert retry_pending(app_context) == 0


@pytest.fixture
def three_attempts(database_url: str) -> Iterator[AppContext]:
    ctx = AppContext.open(make_settings(database_url, inbox_max_attempts=3))
    ctx.sync_lists()
    yield ctx
    ctx.close()


def test_poison_event_is_parked_after_max_attempts_with_an_alert(
        three_attempts: AppContext, served_for: Callable[[AppContext], Served],
        broken_purge_step: Callable[[], None]) -> None:
    served = served_for(three_attempts)
    stream = io.StringIO()
    logs.configure(level="info", fmt="json", stream=stream)
    try:
        served.deliver("unsubscribe.form")
        assert retry_pending(three_attempts) == 0
        assert inbox_rows(three_attempts)[0].status == "failed"
        assert retry_pending(three_attempts) == 0
    finally:
        logs.configure(level="warning", fmt="json")
    [row] = inbox_rows(three_attempts)
    assert (row.status, row.attempts) == ("parked", 3)
    assert INBOX_PARKED._value.get() == 1
    alerts = [json.loads(line) for line in stream.getvalue().splitlines()
              if "webhook event parked" in line]
    assert [(a["level"], a["event_id"]) for a in alerts] == [("error", row.id)]
    assert "ada.lovelace" not in stream.getvalue()


def test_unappliable_event_is_parked_at_once(served: Served, app_context: AppContext) -> None:
    # The new address already belongs to another contact: no retry can fix that.
    add_contact(app_context, ADA, events=confirmed())
    add_contact(app_context, "ada.king@example.org", events=confirmed())
    assert served.deliver("upemail.form").status_code == 200
    [row] = inbox_rows(app_context)
    assert row.status == "parked"
    assert row.last_error is not None
    assert "another contact" in row.last_error
    assert "@" not in row.last_error


def _push_with_an_unapplied_unsubscribe(ctx: AppContext, emulator: MailchimpEmulator,
                                        served: Served, *, retries: int) -> str | None:
    """Ada's unsubscribe arrives over HTTP and fails to apply (then is retried `retries`
    times); a real sync run follows. Returns the event's status then."""
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl"])
    add_contact(ctx, "grace.hopper@example.com", events=confirmed(), lists=["newsletter-nl"])
    assert served.deliver("unsubscribe.form").status_code == 200
    for _ in range(retries):
        assert retry_pending(ctx) == 0
    run_sync(ctx)
    assert emulator.member("grace.hopper@example.com") is not None  # the control
    with transaction(ctx.sessions) as session:
        return session.scalar(select(WebhookEvent.status))


def test_failed_unsubscribe_blocks_the_push(
        emulated_context: AppContext, emulator: MailchimpEmulator,
        served_for: Callable[[AppContext], Served],
        broken_purge_step: Callable[[], None]) -> None:
    status = _push_with_an_unapplied_unsubscribe(
        emulated_context, emulator, served_for(emulated_context), retries=0)

    assert status == "failed"
    assert emulator.member(ADA) is None  # held back: the unsubscribe is not applied yet


@pytest.fixture
def parks_on_first_retry(database_url: str, emulator: MailchimpEmulator) -> Iterator[AppContext]:
    ctx = AppContext.open(emulated_settings(database_url, emulator, inbox_max_attempts=2))
    ctx.sync_lists()
    yield ctx
    ctx.close()


def test_parked_unsubscribe_blocks_the_push(
        parks_on_first_retry: AppContext, emulator: MailchimpEmulator,
        served_for: Callable[[AppContext], Served],
        broken_purge_step: Callable[[], None]) -> None:
    status = _push_with_an_unapplied_unsubscribe(
        parks_on_first_retry, emulator, served_for(parks_on_first_retry), retries=1)

    assert status == "parked"
    assert emulator.member(ADA) is None  # parked is not applied: still held back
