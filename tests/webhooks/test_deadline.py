"""Issue 11, finding 2: a webhook behind a held lock is answered within the deadline, and
a 2xx means the purge committed (I3). The lock is another writer's, held longer than
Mailchimp waits: on SQLite the write lock, on PostgreSQL the contact's row lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from syncd.context import AppContext
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_WEBHOOK_SECRET, fixture_body, make_settings
from tests.webhooks.conftest import FORM, Served, inbox_rows
from tests.webhooks.snapshot import person

ADA = "ada.lovelace@example.com"
# Mailchimp gives up on a delivery after 10 s: an answer later than that is no answer.
MAILCHIMP_TIMEOUT_S = 10
DELIVERIES = 8


@contextmanager
def another_writer(database_url: str) -> Iterator[None]:
    """Another process's transaction holding what the purge needs, until the block ends."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(url.database), isolation_level=None, timeout=1)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_engine(url.set(drivername="postgresql+psycopg"))
    with engine.connect() as conn:
        conn.execute(text("SELECT id FROM contacts WHERE email_key = :key FOR UPDATE"),
                     {"key": ADA})
        try:
            yield
        finally:
            conn.rollback()
    engine.dispose()


def _deliver(served: Served) -> requests.Response | str:
    try:
        return requests.post(served.url(TEST_WEBHOOK_SECRET), data=fixture_body(
            "unsubscribe.form"), headers=FORM, timeout=MAILCHIMP_TIMEOUT_S)
    except requests.Timeout:
        return "no answer before Mailchimp gives up"


def test_webhooks_behind_a_held_lock_get_503_in_time_and_nothing_half_done(
        database_url: str, served_for: Callable[[AppContext], Served]) -> None:
    ctx = AppContext.open(make_settings(database_url, webhook_deadline_seconds=1.0))
    ctx.sync_lists()
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl"])
    served = served_for(ctx)

    with another_writer(database_url), ThreadPoolExecutor(DELIVERIES) as pool:
        answers = list(pool.map(lambda _i: _deliver(served), range(DELIVERIES)))

    statuses = [a if isinstance(a, str) else a.status_code for a in answers]
    assert statuses == [503] * DELIVERIES
    assert all(a.headers.get("Retry-After") for a in answers if not isinstance(a, str))
    assert inbox_rows(ctx) == []
    assert person(ctx, ADA).lists == ("newsletter-nl",)
    ctx.close()


def test_the_retry_after_the_lock_is_released_purges_before_its_200(
        database_url: str, served_for: Callable[[AppContext], Served]) -> None:
    ctx = AppContext.open(make_settings(database_url, webhook_deadline_seconds=1.0))
    ctx.sync_lists()
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl"])
    served = served_for(ctx)
    with another_writer(database_url):
        refused = _deliver(served)

    retried = _deliver(served)

    assert not isinstance(refused, str)
    assert refused.status_code == 503
    assert not isinstance(retried, str)
    assert (retried.status_code, retried.text.strip()) == (200, "applied")
    assert person(ctx, ADA).lists == ()
    assert [row.status for row in inbox_rows(ctx)] == ["applied"]
    ctx.close()
