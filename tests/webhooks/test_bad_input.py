"""Every class of bad input gets a clear 4xx (never a 5xx), stores nothing it should not,
and never echoes the body."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.context import AppContext
from tests.conftest import TEST_WEBHOOK_SECRET, fixture_body
from tests.webhooks.conftest import FORM, Served, inbox_rows

LIMIT = 65536


def _raw_exchange(served: Served, head: bytes, chunks: list[bytes]) -> bytes:
    """Send a request by hand (for bodies a client library would not send) and return
    the raw answer, tolerating the server closing the connection early."""
    parts = urlsplit(served.base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        try:
            conn.sendall(head)
            for chunk in chunks:
                conn.sendall(chunk)
        except OSError:
            pass  # the server answered and closed before reading everything: intended
        answer = b""
        try:
            while data := conn.recv(65536):
                answer += data
                if b"\r\n\r\n" in answer:
                    break
        except OSError:
            pass
        return answer


def test_oversized_body_is_refused_by_content_length_before_reading(
        served: Served, app_context: AppContext) -> None:
    head = (f"POST /webhooks/mailchimp/{TEST_WEBHOOK_SECRET} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: 10000000\r\n\r\n").encode()
    # Only the headers and a few bytes are sent: the answer must not wait for the rest.
    answer = _raw_exchange(served, head, [b"type=unsubscribe"])
    assert answer.startswith(b"HTTP/1.1 413")
    assert inbox_rows(app_context) == []


def test_oversized_chunked_body_is_refused_while_streaming(
        served: Served, app_context: AppContext) -> None:
    head = (f"POST /webhooks/mailchimp/{TEST_WEBHOOK_SECRET} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    piece = b"type=unsubscribe&" + b"x" * 4079
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    answer = _raw_exchange(served, head, [chunk] * 40 + [b"0\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 413")
    assert inbox_rows(app_context) == []


def test_body_just_under_the_limit_is_read(served: Served, app_context: AppContext) -> None:
    body = fixture_body("campaign.form") + b"&pad=" + b"x" * (LIMIT - 500)
    assert len(body) < LIMIT
    assert served.post(body).status_code == 200


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data",
                                          "application/x-www-form-urlencoded; charset=latin-1"])
def test_wrong_content_type_is_415(served: Served, app_context: AppContext,
                                   content_type: str) -> None:
    response = served.deliver("unsubscribe.form", headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert inbox_rows(app_context) == []


def test_missing_content_type_is_415(served: Served, app_context: AppContext) -> None:
    response = requests.post(served.url(), data=fixture_body("unsubscribe.form"), timeout=10,
                             headers={"Content-Type": ""})
    assert response.status_code == 415


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded; charset=UTF-8",
                                          "Application/X-WWW-Form-Urlencoded"])
def test_form_type_with_charset_or_case_is_accepted(served: Served, app_context: AppContext,
                                                    content_type: str) -> None:
    response = served.deliver("campaign.form", headers={"Content-Type": content_type})
    assert response.status_code == 200


@pytest.mark.parametrize(("body", "problem"), [
    (b"type=unsubscribe&data%5Bemail%5D=ada.lovelace%40example.com\xff", b"UTF-8"),
    (b"type=unsubscribe&data%5Bemail%5D=ada.lovelace%FF%40example.com", b"UTF-8"),
    (b"type=unsubscribe&data%5Bemail%5D=ada.lovelace%G0%40example.com", b"percent"),
    (b"fired_at=2026-03-04+13%3A10%3A40&data%5Bemail%5D=ada.lovelace%40example.com", b"type"),
    (b"type=profile&" + b"&".join(b"f%d=1" % i for i in range(5000)), b"fields"),
])
def test_malformed_body_is_400_naming_the_problem_without_echo(
        served: Served, app_context: AppContext, body: bytes, problem: bytes) -> None:
    response = served.post(body)
    assert response.status_code == 400
    assert problem in response.content
    assert b"ada.lovelace" not in response.content
    assert inbox_rows(app_context) == []


def test_unsubscribe_without_email_is_kept_and_parked(served: Served,
                                                      app_context: AppContext) -> None:
    body = fixture_body("unsubscribe.form").replace(
        b"data%5Bemail%5D=ada.lovelace%40example.com", b"data%5Bemail%5D=")
    assert served.post(body).status_code == 200
    [row] = inbox_rows(app_context)
    assert (row.status, row.address_hmac) == ("parked", None)
    assert row.last_error is not None
    assert "data[email]" in row.last_error


def test_unknown_type_is_stored_and_ignored(served: Served, app_context: AppContext) -> None:
    assert served.post(b"type=brand_new_event&fired_at=2026-03-01+10%3A00%3A00").status_code == 200
    [row] = inbox_rows(app_context)
    assert (row.kind, row.status) == ("unknown", "ignored")


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_are_405(served: Served, app_context: AppContext, method: str) -> None:
    response = requests.request(method, served.url(), data=fixture_body("unsubscribe.form"),
                                headers=FORM, timeout=10)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert inbox_rows(app_context) == []


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_validator_request_gets_200(served: Served, app_context: AppContext,
                                    method: str) -> None:
    response = requests.request(method, served.url(), timeout=10,
                                headers={"User-Agent": "MailChimp.com WebHook Validator"})
    assert response.status_code == 200
    assert inbox_rows(app_context) == []


def test_empty_post_gets_200_and_stores_nothing(served: Served, app_context: AppContext) -> None:
    assert requests.post(served.url(), timeout=10).status_code == 200
    assert served.post(b"").status_code == 200
    assert inbox_rows(app_context) == []


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(min_size=1, max_size=300) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bodies_never_get_a_5xx(served: Served, app_context: AppContext,
                                          body: bytes) -> None:
    assert served.post(body).status_code in (200, 400)
