"""The operator's endpoints on a real uvicorn: /status and /status.json (loopback or the
operator token; no personal data; alert conditions), the alert webhook, and the DSAR API
(bearer token, bounded JSON body)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import requests

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import SyncRun, WebhookEvent
from syncd.service.alerts import AlertNotifier
from syncd.service.app import create_app
from syncd.service.status_data import collect
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID, make_settings
from tests.service.conftest import served
from tests.service.status_state import ADDRESSES, PARKED, troubled

TOKEN = "operator-token-for-the-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def ctx(database_url: str) -> Iterator[AppContext]:
    context = AppContext.open(make_settings(database_url, operator_token=TOKEN))
    context.sync_lists()
    yield context
    context.close()


def test_status_json_shows_held_withdrawals_and_parked_contacts(ctx: AppContext) -> None:
    parked_id = troubled(ctx, held=3)
    with served(create_app(ctx, webhooks=False)) as url:
        doc = requests.get(url + "/status.json", timeout=10).json()
    assert doc["held_withdrawals"]["count"] == 3
    assert doc["parked_contacts"]["count"] == 1
    listed = doc["parked_contacts"]["listed"][0]
    assert (listed["contact_id"], listed["reason"]) == (parked_id,
                                                        "<address> looks fake or invalid")
    assert doc["inbox"]["parked_count"] == 1
    assert {a["key"] for a in doc["alerts"]} == {"withdrawals_held", "events_parked"}


def test_status_carries_no_address_in_html_or_json(ctx: AppContext) -> None:
    troubled(ctx)
    with served(create_app(ctx, webhooks=False)) as url:
        html = requests.get(url + "/status", timeout=10).text
        raw = requests.get(url + "/status.json", timeout=10).text
    for address in ADDRESSES:
        assert address not in html
        assert address not in raw
    assert "@" not in html
    assert "@" not in raw


def test_status_answers_json_to_an_accept_header(ctx: AppContext) -> None:
    with served(create_app(ctx, webhooks=False)) as url:
        answer = requests.get(url + "/status", headers={"Accept": "application/json"},
                              timeout=10)
    assert answer.json()["schema"] == "syncd-status/1"
    assert answer.headers["cache-control"] == "no-store"


def test_status_through_a_proxy_needs_the_token(ctx: AppContext) -> None:
    relayed = {"X-Forwarded-For": "203.0.113.5"}
    with served(create_app(ctx, webhooks=False)) as url:
        refused = requests.get(url + "/status.json", headers=relayed, timeout=10)
        wrong = requests.get(url + "/status.json", timeout=10,
                             headers=relayed | {"Authorization": "Bearer " + "x" * len(TOKEN)})
        allowed = requests.get(url + "/status.json", headers=relayed | AUTH, timeout=10)
    assert (refused.status_code, wrong.status_code, allowed.status_code) == (401, 401, 200)


def test_status_from_loopback_can_be_turned_off(database_url: str) -> None:
    context = AppContext.open(make_settings(database_url, status_allow_localhost=False))
    try:
        with served(create_app(context, webhooks=False)) as url:
            answer = requests.get(url + "/status", timeout=10)
    finally:
        context.close()
    assert answer.status_code == 401
    assert "SYNCD_OPERATOR_TOKEN" in answer.json()["error"]


def _failed_sync(ctx: AppContext, minutes_ago: float) -> None:
    moment = utcnow() - timedelta(minutes=minutes_ago)
    with transaction(ctx.sessions) as session:
        session.add(SyncRun(kind="sync", audience_id=TEST_AUDIENCE_ID, outcome="failed",
                            counts={}, started_at=moment, finished_at=moment,
                            error="Mailchimp unavailable"))


def test_a_sync_failing_twice_in_a_row_is_an_alert_once_is_not(ctx: AppContext) -> None:
    _failed_sync(ctx, 20)
    assert collect(ctx)["alerts"] == []
    _failed_sync(ctx, 5)
    assert [a["key"] for a in collect(ctx)["alerts"]] == [
        f"sync_failed_twice:{TEST_AUDIENCE_ID}"]


def test_an_event_waiting_too_long_makes_the_inbox_stuck(ctx: AppContext) -> None:
    with transaction(ctx.sessions) as session:
        session.add(WebhookEvent(dedupe_key="f" * 64, kind="unsubscribe", list_id="l1",
                                 received_at=utcnow() - timedelta(minutes=45),
                                 status="failed", attempts=2))
    doc = collect(ctx)
    assert doc["inbox"]["stuck"] is True
    assert [a["key"] for a in doc["alerts"]] == ["inbox_stuck"]


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def alert_hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()
    server.server_close()


def test_the_alert_webhook_hears_each_start_and_end_once(
        database_url: str, alert_hook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = alert_hook
    context = AppContext.open(make_settings(database_url, alert_webhook_url=url))
    try:
        context.sync_lists()
        troubled(context)
        notifier = AlertNotifier(context)
        first = notifier.check()
        again = notifier.check()
        with transaction(context.sessions) as session:
            session.query(WebhookEvent).update({"status": "applied"})
        ended = notifier.check()
        notifier.close()
    finally:
        context.close()
    assert first is not None
    assert again is None
    assert ended is not None
    assert [[b["key"] for b in r["began"]] for r in received] == [
        ["events_parked", "withdrawals_held"], []]
    assert [e["key"] for e in received[1]["ended"]] == ["events_parked"]
    assert PARKED not in json.dumps(received)


def test_an_unreachable_alert_webhook_is_tried_again(database_url: str) -> None:
    context = AppContext.open(make_settings(database_url,
                                            alert_webhook_url="http://127.0.0.1:9/hook"))
    try:
        context.sync_lists()
        troubled(context)
        notifier = AlertNotifier(context)
        assert notifier.check() is None
        assert notifier.announced == {}
    finally:
        context.close()


def _post(url: str, path: str, body: Any, headers: dict[str, str] | None = None
          ) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(url + path, data=data, timeout=10,
                         headers={"Content-Type": "application/json"} | (headers or {}))


def test_dsar_export_answers_the_operator_token(ctx: AppContext) -> None:
    add_contact(ctx, "ada@example.com", events=confirmed())
    with served(create_app(ctx, webhooks=False)) as url:
        answer = _post(url, "/api/v1/subjects/export", {"email": "Ada@Example.com"}, AUTH)
    assert answer.status_code == 200
    doc = answer.json()
    assert (doc["schema"], doc["contact"]["email_key"]) == ("syncd-subject-export/1",
                                                             "ada@example.com")
    assert len(doc["consent_events"]) == 2
    assert answer.headers["cache-control"] == "no-store"


def test_dsar_proof_answers_the_operator_token(ctx: AppContext) -> None:
    add_contact(ctx, "ada@example.com", events=confirmed())
    with served(create_app(ctx, webhooks=False)) as url:
        answer = _post(url, "/api/v1/subjects/proof", {"email": "ada@example.com"}, AUTH)
    assert answer.status_code == 200
    assert answer.json()["purposes"]["newsletter"]["standing"] == "confirmed"


def test_dsar_refuses_without_the_token_even_from_loopback(ctx: AppContext) -> None:
    add_contact(ctx, "ada@example.com", events=confirmed())
    with served(create_app(ctx, webhooks=False)) as url:
        bare = _post(url, "/api/v1/subjects/export", {"email": "ada@example.com"})
        wrong = _post(url, "/api/v1/subjects/export", {"email": "ada@example.com"},
                      {"Authorization": "Bearer not-the-token"})
    assert (bare.status_code, wrong.status_code) == (401, 401)
    assert "ada" not in bare.text + wrong.text


def test_dsar_is_off_without_an_operator_token(app_context: AppContext) -> None:
    with served(create_app(app_context, webhooks=False)) as url:
        answer = _post(url, "/api/v1/subjects/export", {"email": "ada@example.com"}, AUTH)
    assert answer.status_code == 404
    assert "off" in answer.json()["error"]


@pytest.mark.parametrize(("body", "problem"), [
    (b"{not json", "must be JSON"),
    ({"mail": "ada@example.com"}, "string \"email\""),
    ({"email": "not an address"}, "address"),
    (json.dumps({"email": "a@example.com", "pad": "x" * 5000}).encode(), "at most 4096"),
])
def test_dsar_names_what_is_wrong_with_a_request(ctx: AppContext, body: Any,
                                                 problem: str) -> None:
    with served(create_app(ctx, webhooks=False)) as url:
        answer = _post(url, "/api/v1/subjects/export", body, AUTH)
    assert answer.status_code == 400
    assert problem in answer.json()["error"]


def test_dsar_for_a_stranger_is_not_found(ctx: AppContext) -> None:
    with served(create_app(ctx, webhooks=False)) as url:
        answer = _post(url, "/api/v1/subjects/export", {"email": "who@example.com"}, AUTH)
    assert answer.status_code == 404
