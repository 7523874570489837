"""Issue 11, findings 1 and 4: `syncd serve` bounds its connections (a request-head
deadline, a cap that sheds the oldest idle connection first, 503 with Retry-After when
every connection is busy, overload in the metrics) and refuses to start without a
webhook secret unless webhooks are switched off."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from syncd.context import AppContext
from syncd.exit_codes import ExitCode
from syncd.service.app import create_app
from tests.conftest import TEST_WEBHOOK_SECRET
from tests.service.conftest import ServeProcess, served, service_env
from tests.service.slow_clients import PARTIAL_HEAD

DEAD_MAILCHIMP = "http://127.0.0.1:9/3.0"


@pytest.fixture
def raw_connections() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def _connect(port: int, opened: list[socket.socket]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    opened.append(sock)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server closes the connection (within the socket's 15 s timeout)."""
    try:
        while data := sock.recv(4096):
            if b"\r\n\r\n" in data:
                return False  # an answer, not a close
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_request_head_never_finished_is_closed_after_the_header_timeout(
        database_url: str, serve_process: Callable[..., ServeProcess],
        raw_connections: list[socket.socket]) -> None:
    server = serve_process(service_env(database_url, DEAD_MAILCHIMP,
                                       http_header_timeout_seconds=1))
    server.wait_ready()
    silent = _connect(server.port, raw_connections)
    slowloris = _connect(server.port, raw_connections)
    slowloris.sendall(PARTIAL_HEAD)

    assert _closed_by_server(silent)
    assert _closed_by_server(slowloris)
    metrics = requests.get(server.base_url + "/metrics", timeout=5).text
    assert 'syncd_http_connections_shed_total{reason="header_timeout"} 2.0' in metrics
    assert server.stop() == 0


def test_past_the_cap_the_oldest_idle_connection_makes_room_for_a_new_request(
        database_url: str, serve_process: Callable[..., ServeProcess],
        raw_connections: list[socket.socket]) -> None:
    server = serve_process(service_env(database_url, DEAD_MAILCHIMP, http_max_connections=16,
                                       http_header_timeout_seconds=120))
    server.wait_ready()
    idle = [_connect(server.port, raw_connections) for _ in range(16)]

    answer = requests.get(server.base_url + "/healthz", timeout=10)

    assert answer.status_code == 200
    assert _closed_by_server(idle[0])
    metrics = requests.get(server.base_url + "/metrics", timeout=5).text
    assert 'syncd_http_connections_shed_total{reason="evicted"}' in metrics
    assert server.stop() == 0


def test_when_every_connection_is_busy_a_new_one_gets_503_with_retry_after(
        database_url: str, serve_process: Callable[..., ServeProcess],
        raw_connections: list[socket.socket]) -> None:
    server = serve_process(service_env(database_url, DEAD_MAILCHIMP, http_max_connections=16,
                                       http_body_timeout_seconds=120,
                                       webhook_deadline_seconds=9))
    server.wait_ready()
    head = (f"POST /webhooks/mailchimp/{TEST_WEBHOOK_SECRET} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 900\r\n\r\n")
    for _ in range(16):  # each is busy: its request is in, its body never comes
        _connect(server.port, raw_connections).sendall(head.encode())
    time.sleep(1)  # let the server read the 16 heads (loopback: milliseconds)

    newcomer = _connect(server.port, raw_connections)
    newcomer.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = newcomer.recv(4096)

    assert answer.startswith(b"HTTP/1.1 503")
    assert b"Retry-After: " in answer
    server.stop()


def test_the_connection_cap_stays_below_the_descriptor_limit() -> None:
    from syncd.service.connections import connection_limit

    assert connection_limit(1000, 1024) < 1024 - 100
    assert connection_limit(1000, 65536) == 1000


def test_serve_without_a_webhook_secret_refuses_to_start_and_says_how_to_fix_it(
        database_url: str, serve_process: Callable[..., ServeProcess]) -> None:
    env = service_env(database_url, DEAD_MAILCHIMP)
    del env["SYNCD_WEBHOOK_SECRETS"]
    server = serve_process(env)

    code = server.proc.wait(timeout=60)
    server.stop()

    assert code == ExitCode.CONFIG
    assert "SYNCD_WEBHOOK_SECRETS" in server.log_text()
    assert "SYNCD_WEBHOOK_ENABLED=false" in server.log_text()


def test_serve_with_webhooks_switched_off_starts_and_readyz_says_so(
        database_url: str, serve_process: Callable[..., ServeProcess]) -> None:
    env = service_env(database_url, DEAD_MAILCHIMP, webhook_enabled="false")
    del env["SYNCD_WEBHOOK_SECRETS"]
    server = serve_process(env)
    server.wait_ready()

    ready = requests.get(server.base_url + "/readyz", timeout=5).json()
    delivery = requests.post(f"{server.base_url}/webhooks/mailchimp/{TEST_WEBHOOK_SECRET}",
                             data=b"type=unsubscribe", timeout=5)

    assert ready["checks"]["webhooks"].startswith("ok (disabled")
    assert delivery.status_code == 404
    assert server.stop() == 0


def test_readyz_is_not_ready_when_the_webhook_endpoint_has_no_secret(
        app_context: AppContext) -> None:
    ctx = AppContext(app_context.settings.model_copy(update={"webhook_secrets": []}),
                     app_context.engine)

    with served(create_app(ctx)) as url:
        answer = requests.get(url + "/readyz", timeout=5)

    assert answer.status_code == 503
    assert "webhooks" in answer.json()["failing"]
