"""Which effect an event has, for the cases the other webhook tests leave open, over HTTP
through the real endpoint: an event for another audience is ignored (the operator reads
why, and the log names its list and kind, never the address), an event without a
readable `fired_at` happens when it is received, and a profile fired ahead of syncd's
clock is applied, not taken for a stale one."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from syncd import logs
from syncd.clock import utcnow
from syncd.context import AppContext
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID, fixture_body, make_settings
from tests.webhooks.conftest import Served, inbox_rows
from tests.webhooks.snapshot import person

ADA = "ada.lovelace@example.com"
OTHER_LIST = "0a1b2c3d4e"  # an audience id of the account that is not the synced one


@pytest.fixture
def esp_master(database_url: str) -> Iterator[AppContext]:
    ctx = AppContext.open(make_settings(database_url, webhook_profile_master="esp"))
    ctx.sync_lists()
    yield ctx
    ctx.close()


def _unsubscribe(**fields: str) -> bytes:
    return urlencode({"type": "unsubscribe", "data[action]": "unsub",
                      "data[reason]": "manual", "data[email]": ADA,
                      "data[list_id]": TEST_AUDIENCE_ID} | fields).encode()


def test_an_event_for_another_audience_is_ignored_and_says_so(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])

    served.post(_unsubscribe(**{"data[list_id]": OTHER_LIST}))

    [row] = inbox_rows(app_context)
    assert (row.status, row.last_error) == ("ignored", "event for another audience")
    assert person(app_context, ADA).lists == ("newsletter-nl",)


def test_an_event_for_another_audience_is_logged_with_its_list_and_kind(
        served: Served, app_context: AppContext) -> None:
    stream = io.StringIO()
    logs.configure(level="info", fmt="json", stream=stream)
    try:
        served.post(_unsubscribe(**{"data[list_id]": OTHER_LIST}))
    finally:
        logs.configure(level="warning", fmt="json")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()
             if "no target syncs" in line]
    assert [(line["event"], line["list_id"], line["kind"]) for line in lines] == [
        ("webhook for an audience no target syncs ignored", OTHER_LIST, "unsubscribe")]
    assert ADA not in stream.getvalue()


def test_an_event_without_a_readable_fired_at_happens_when_it_is_received(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    before = utcnow()

    served.post(_unsubscribe())

    [(_source, occurred_at, _reason)] = person(app_context, ADA).withdrawals
    assert before <= occurred_at <= utcnow()
    assert [row.status for row in inbox_rows(app_context)] == ["applied"]


def test_a_profile_fired_ahead_of_syncds_clock_is_applied(
        esp_master: AppContext, served_for: Callable[[AppContext], Served]) -> None:
    add_contact(esp_master, ADA, events=confirmed(), first_name="Ada", last_name="Lovelace")
    ahead = (utcnow() + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    body = fixture_body("profile.form").replace(
        b"2026-03-03+21%3A31%3A21", urlencode({"x": ahead}).encode()[2:])

    served_for(esp_master).post(body)

    assert [row.status for row in inbox_rows(esp_master)] == ["applied"]
    assert (person(esp_master, ADA).first_name, person(esp_master, ADA).last_name) == (
        "Augusta Ada", "King")
