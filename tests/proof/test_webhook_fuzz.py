"""Webhook fuzzing: generated bodies, headers, methods and sizes against the real
endpoint (the service app on a real uvicorn: a keep-alive `requests` session for the
bulk, raw sockets for what an HTTP client will not send: lying lengths, broken
chunking), and the memory of a `syncd serve` process fed a 50 MB body. (FastAPI's
TestClient needs httpx2, which is not installed.)

Properties: never a 5xx; a refused request (wrong secret, malformed body, bad type or
size) changes no row of contacts, ledger, suppressions, lists or the inbox.
The webhook owner's tests/webhooks/ cover each bad-input class once by name; this file
throws generated combinations at the same code path."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.context import AppContext
from syncd.service.app import create_app
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID, TEST_WEBHOOK_SECRET
from tests.proof.world import table_counts
from tests.service.conftest import ServeProcess, serve_process, service_env, wait_until

__all__ = ["serve_process"]  # the fixture, for this module

STATE_TABLES = ("contacts", "consent_events", "suppressions", "list_memberships",
                "webhook_events")
FORM = "application/x-www-form-urlencoded"
POOL = ("ann@example.org", "Bob@Example.org", "cleo@example.org")
FUZZ = settings(max_examples=60, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


class Client:
    """The served service app, one keep-alive session."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def request(self, method: str, path: str, *, content: bytes = b"",
                headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.request(method, self.base_url + path, data=content,
                                    headers=headers or {}, timeout=15)

    def post(self, path: str, *, content: bytes, headers: dict[str, str]) -> requests.Response:
        return self.request("POST", path, content=content, headers=headers)


@pytest.fixture
def client(app_context: AppContext) -> Iterator[Client]:
    from tests.webhooks.conftest import serve_app

    for email in POOL:
        add_contact(app_context, email, events=confirmed(), lists=["newsletter-nl"])
    served = serve_app(create_app(app_context))
    yield Client(served.base_url)
    served.stop()


def _path(secret: str = TEST_WEBHOOK_SECRET) -> str:
    return "/webhooks/mailchimp/" + quote(secret, safe="")


# -- generators ---------------------------------------------------------------------

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
                max_size=40)
_key_part = st.one_of(st.sampled_from(["data", "merges", "EMAIL", "FNAME", "GROUPINGS", "0",
                                       "name", "groups", "email", "old_email", "new_email",
                                       "reason", "action", "list_id", "id", ""]), _text)
_bracket_key = st.builds(
    lambda head, parts: head + "".join(f"[{p}]" for p in parts),
    st.sampled_from(["data", "type", "fired_at", "x"]) | _text,
    st.lists(_key_part, max_size=8))
_value = st.one_of(_text, st.sampled_from(POOL), st.integers().map(str),
                   st.sampled_from(["", "unsub", "delete", "abuse", "hard", "manual",
                                    TEST_AUDIENCE_ID, "2026-03-01 10:00:00", "9999-99-99"]),
                   st.integers(1_000, 200_000).map(lambda n: "x" * n))
_type = st.sampled_from(["unsubscribe", "cleaned", "profile", "upemail", "subscribe",
                         "campaign", "UNSUBSCRIBE", "", "delete"]) | _text


@st.composite
def looks_valid(draw: st.DrawFn) -> bytes:
    """A body shaped like Mailchimp's with random types and values."""
    pairs = [("type", draw(_type)), ("fired_at", draw(_value)),
             ("data[email]", draw(_value)), ("data[list_id]", draw(_value)),
             ("data[reason]", draw(_value)), ("data[action]", draw(_value)),
             ("data[old_email]", draw(_value)), ("data[new_email]", draw(_value))]
    pairs = draw(st.lists(st.sampled_from(pairs), unique=True, min_size=1))
    pairs += draw(st.lists(st.tuples(_bracket_key, _value), max_size=12))
    return urlencode(draw(st.permutations(pairs))).encode()


bodies = st.one_of(
    looks_valid(),
    st.lists(st.tuples(_bracket_key, _value), max_size=30).map(
        lambda pairs: urlencode(pairs).encode()),
    st.binary(max_size=2000),
    st.integers(1, 3000).map(lambda n: "&".join(f"k{i}=v" for i in range(n)).encode()),
    st.sampled_from([b"%", b"%zz", b"type=%ff%fe", b"type=unsubscribe&data[email]=%C3%28",
                     b"\xff\xfe\x00", b"type=" + b"[" * 5000]),
)
content_types = st.sampled_from([FORM, FORM + "; charset=utf-8", FORM.upper(),
                                 FORM + "; charset=latin-1", "application/json", "text/plain",
                                 "multipart/form-data; boundary=x", "", "garbage"])
methods = st.sampled_from(["POST", "POST", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "GET",
                           "HEAD"])


# -- properties ---------------------------------------------------------------------

@FUZZ
@given(body=bodies, content_type=content_types, method=methods)
def test_generated_requests_never_get_a_5xx_and_refusals_change_nothing(
        client: Client, app_context: AppContext, body: bytes, content_type: str,
        method: str) -> None:
    before = table_counts(app_context, STATE_TABLES)
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.request(method, _path(), content=body, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400 or method != "POST":
        assert table_counts(app_context, STATE_TABLES) == before


@FUZZ
@given(body=bodies, secret=st.one_of(
    st.just(""), st.just(TEST_WEBHOOK_SECRET[:-1]), st.just(TEST_WEBHOOK_SECRET + "x"),
    st.just(TEST_WEBHOOK_SECRET.upper()), st.just(TEST_WEBHOOK_SECRET[:16]),
    _text.filter(lambda s: s not in ("", TEST_WEBHOOK_SECRET))))
def test_any_body_with_a_wrong_secret_changes_nothing(
        client: Client, app_context: AppContext, body: bytes, secret: str) -> None:
    before = table_counts(app_context, STATE_TABLES)
    response = client.post(_path(secret) if secret else "/webhooks/mailchimp/",
                           content=body, headers={"Content-Type": FORM})
    assert response.status_code in (401, 404)
    assert table_counts(app_context, STATE_TABLES) == before


# -- real HTTP: what a test client cannot send ----------------------------------------

def _raw(port: int, head: bytes, body_chunks: list[bytes] | Callable[[], Iterator[bytes]],
         timeout: float = 10) -> bytes:
    """Send raw bytes; return what the server answered (until it closed or went quiet)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        chunks = body_chunks() if callable(body_chunks) else iter(body_chunks)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the server stopped reading: it answered and closed
        sock.settimeout(3)
        answer = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
                if b"\r\n\r\n" in answer and not answer.startswith(b"HTTP/1.1 100"):
                    break
        except OSError:
            pass
        return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


LIE_CASES = {
    "length_shorter_than_body": (b"Content-Length: 10\r\n", [b"type=unsubscribe&data[email]=a"]),
    "length_not_a_number": (b"Content-Length: ten\r\n", [b"type=x"]),
    "length_negative": (b"Content-Length: -5\r\n", [b"type=x"]),
    "chunked_broken_size": (b"Transfer-Encoding: chunked\r\n", [b"zz\r\ntype=x\r\n0\r\n\r\n"]),
    "chunked_and_length": (b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                           [b"6\r\ntype=x\r\n0\r\n\r\n"]),
}


@pytest.mark.parametrize("case", sorted(LIE_CASES))
def test_lying_lengths_and_broken_chunking_get_no_5xx_and_change_nothing(
        app_context: AppContext, case: str) -> None:
    from tests.webhooks.conftest import app_for, serve_app

    served = serve_app(app_for(app_context))
    try:
        port = int(served.base_url.rsplit(":", 1)[1])
        header, chunks = LIE_CASES[case]
        before = table_counts(app_context, STATE_TABLES)
        head = (f"POST {_path()} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: {FORM}\r\nConnection: close\r\n").encode() + header + b"\r\n"
        answer = _raw(port, head, chunks)
        # uvicorn's parser refuses some of these before the app runs (400, or a close);
        # others are valid HTTP that mean a shorter body (here an unknown event type).
        status = _status(answer)
        assert not 500 <= status < 600, answer[:200]
        after = table_counts(app_context, STATE_TABLES)
        assert {t: n for t, n in after.items() if t != "webhook_events"} == {
            t: n for t, n in before.items() if t != "webhook_events"}
        if status != 200:
            assert after == before
    finally:
        served.stop()


# -- memory: a 50 MB body to a real `syncd serve` ------------------------------------

BIG = 50 * 1024 * 1024
CHUNK = 64 * 1024


def _vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _stream_50mb(port: int, *, declared: bool) -> tuple[int, int]:
    """(status, bytes the client managed to send before the server stopped reading)"""
    sent = [0]
    length = f"Content-Length: {BIG}\r\n" if declared else "Transfer-Encoding: chunked\r\n"
    head = (f"POST {_path()} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {FORM}\r\n"
            f"{length}\r\n").encode()
    block = b"a" * CHUNK

    def chunks() -> Iterator[bytes]:
        while sent[0] < BIG:
            sent[0] += CHUNK
            yield block if declared else b"%x\r\n" % CHUNK + block + b"\r\n"
        if not declared:
            yield b"0\r\n\r\n"

    answer = _raw(port, head, chunks, timeout=30)
    return _status(answer), sent[0]


@pytest.mark.parametrize("declared", [True, False], ids=["content_length", "chunked"])
def test_a_50mb_body_is_refused_early_without_buffering_it(
        serve_process: Callable[..., ServeProcess], database_url: str, declared: bool,
        capsys: pytest.CaptureFixture[str]) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the body is refused before any database work: one database suffices")
    server = serve_process(service_env(database_url, "http://127.0.0.1:9/3.0"))
    server.wait_ready()
    for _ in range(3):  # warm up: imports, first request, thread pool
        _raw(server.port, (f"GET {_path()} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                           ).encode(), [])
    time.sleep(0.2)
    before = _vm_hwm_kb(server.proc.pid)

    status, sent = _stream_50mb(server.port, declared=declared)

    wait_until(lambda: True, 0.1, "settle")
    growth_kb = _vm_hwm_kb(server.proc.pid) - before
    with capsys.disabled():
        print(f"\n50 MB {'declared' if declared else 'chunked'} body: HTTP {status}, client "
              f"sent {sent / 1e6:.1f} MB before the server stopped reading, VmHWM "
              f"{before / 1024:.1f} MB -> +{growth_kb / 1024:.1f} MB")
    assert status == 413
    assert growth_kb < 10 * 1024  # far below the 50 MB body: never buffered
    threading.Event().wait(0)
