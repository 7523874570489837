"""Issue 11, finding 3: what a database cannot store, or a date the purge cannot compute
with, is refused at the parser with a 400 (never a 503 that Mailchimp retries forever,
never a parked event); a client leaving mid-body is an info line, not a 500."""

from __future__ import annotations

import io
import json
import socket
import time
from urllib.parse import urlsplit

import pytest

from syncd import logs
from syncd.context import AppContext
from syncd.webhooks.mailchimp_form import MalformedBody, parse_body
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_WEBHOOK_SECRET, fixture_body
from tests.webhooks.conftest import Served, inbox_rows
from tests.webhooks.snapshot import person

ADA = "ada.lovelace@example.com"
UNSUBSCRIBE = fixture_body("unsubscribe.form")


@pytest.mark.parametrize("body", [
    UNSUBSCRIBE.replace(b"reason%5D=manual", b"reason%5D=man\x00ual"),
    UNSUBSCRIBE.replace(b"ada.lovelace%40", b"ada.lovelace%00%40"),
], ids=["raw-nul", "percent-encoded-nul"])
def test_a_nul_character_is_refused_with_400_and_nothing_is_stored(
        served: Served, app_context: AppContext, body: bytes) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])

    answer = served.post(body)

    assert answer.status_code == 400
    assert "NUL" in answer.text
    assert inbox_rows(app_context) == []
    assert person(app_context, ADA).lists == ("newsletter-nl",)


@pytest.mark.parametrize("fired_at", [b"0001-01-01+00%3A00%3A00", b"9999-12-31+23%3A59%3A59",
                                      b"0001-01-01T00%3A00%3A00%2B05%3A00"])
def test_a_fired_at_out_of_range_is_refused_with_400_and_nothing_is_stored(
        served: Served, app_context: AppContext, fired_at: bytes) -> None:
    body = UNSUBSCRIBE.replace(b"2026-03-04+13%3A10%3A40", fired_at)

    answer = served.post(body)

    assert answer.status_code == 400
    assert "fired_at is out of range" in answer.text
    assert inbox_rows(app_context) == []


def test_the_parser_refuses_a_year_one_fired_at() -> None:
    with pytest.raises(MalformedBody, match="fired_at is out of range"):
        parse_body(b"type=unsubscribe&fired_at=0001-01-01+00%3A00%3A00&data%5Bemail%5D=a%40b.nl")


def test_a_client_leaving_mid_body_is_an_info_line_not_an_error(
        served: Served, app_context: AppContext) -> None:
    stream = io.StringIO()
    logs.configure(level="info", fmt="json", stream=stream)
    parts = urlsplit(served.base_url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
            conn.sendall(f"POST /webhooks/mailchimp/{TEST_WEBHOOK_SECRET} HTTP/1.1\r\n"
                         f"Host: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded"
                         f"\r\nContent-Length: {len(UNSUBSCRIBE)}\r\n\r\n".encode()
                         + UNSUBSCRIBE[:40])
        for _ in range(100):  # bounded: the server notices the close within moments
            if "went away" in stream.getvalue():
                break
            time.sleep(0.05)
    finally:
        logs.configure(level="warning", fmt="json")
    records = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    assert [r["level"] for r in records if "went away" in r["event"]] == ["info"]
    assert [r for r in records if r["level"] in ("error", "critical")] == []
    assert inbox_rows(app_context) == []


def test_a_list_id_longer_than_the_inbox_column_is_refused_with_400_and_nothing_is_stored(
        served: Served, app_context: AppContext) -> None:
    body = UNSUBSCRIBE.replace(b"list_id%5D=f1243a3b12", b"list_id%5D=" + b"f" * 65)

    answer = served.post(body)

    assert answer.status_code == 400
    assert "list_id is longer than 64 characters" in answer.text
    assert inbox_rows(app_context) == []
