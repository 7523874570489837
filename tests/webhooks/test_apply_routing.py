"""Which target an event is for, over HTTP through the real endpoint: an event that names
no audience (no `data[list_id]`) is the only target's, and with several targets it is
nobody's (ignored, saying why, logged without a list id); an event no target takes is
counted under its kind. Written for survivors of the mutation run (docs/mutation.md)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import pytest
from prometheus_client import REGISTRY

from syncd import logs
from syncd.context import AppContext
from tests.builders import add_contact, confirmed
from tests.conftest import make_settings
from tests.targets.conftest import NEWSLETTER, OFFERS
from tests.webhooks.conftest import Served, inbox_rows
from tests.webhooks.snapshot import person

ADA = "ada.lovelace@example.com"
OTHER_LIST = "0a1b2c3d4e"  # an audience id of the account that no target syncs
UNROUTED = "syncd_webhook_unrouted_events_total"


def _unsubscribe(**fields: str) -> bytes:
    return urlencode({"type": "unsubscribe", "fired_at": "2026-03-04 13:10:40",
                      "data[action]": "unsub", "data[reason]": "manual",
                      "data[email]": ADA} | fields).encode()


@pytest.fixture
def two_targets(database_url: str) -> Iterator[AppContext]:
    ctx = AppContext.open(make_settings(database_url, mailchimp_audience_id=None,
                                        targets=[NEWSLETTER, OFFERS]))
    ctx.sync_lists()
    yield ctx
    ctx.close()


def test_an_event_naming_no_audience_is_the_only_targets(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])

    served.post(_unsubscribe())

    assert [row.status for row in inbox_rows(app_context)] == ["applied"]
    assert person(app_context, ADA).lists == ()


def test_an_event_naming_no_audience_is_ignored_among_several_targets_saying_so(
        two_targets: AppContext, served_for: Callable[[AppContext], Served]) -> None:
    add_contact(two_targets, ADA, events=confirmed(), lists=["newsletter-nl"])

    served_for(two_targets).post(_unsubscribe())

    [row] = inbox_rows(two_targets)
    assert (row.status, row.last_error) == ("ignored", "event names no audience (several "
                                                       "targets)")
    assert person(two_targets, ADA).lists == ("newsletter-nl",)


def test_an_event_naming_no_audience_among_several_targets_is_logged_without_a_list_id(
        two_targets: AppContext, served_for: Callable[[AppContext], Served]) -> None:
    stream = io.StringIO()
    logs.configure(level="info", fmt="json", stream=stream)
    try:
        served_for(two_targets).post(_unsubscribe())
    finally:
        logs.configure(level="warning", fmt="json")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()
             if "no target syncs" in line]
    assert [(line["list_id"], line["kind"]) for line in lines] == [("", "unsubscribe")]


def test_an_event_no_target_takes_is_counted_as_unrouted_under_its_kind(
        served: Served) -> None:
    before = REGISTRY.get_sample_value(UNROUTED, {"kind": "unsubscribe"}) or 0.0

    served.post(_unsubscribe(**{"data[list_id]": OTHER_LIST}))

    assert REGISTRY.get_sample_value(UNROUTED, {"kind": "unsubscribe"}) == before + 1

