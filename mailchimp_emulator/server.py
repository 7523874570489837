"""The emulator's HTTP server, and `MailchimpEmulator`: the emulator (emulator_core.py)
served over HTTP, `/3.0` to the API and `/_emulator/` to control.py.

A stdlib ThreadingHTTPServer speaking HTTP/1.1 (keep-alive for pooled sessions). Each
`/3.0` request: count it, take one of the in-flight slots (Mailchimp allows 10
simultaneous connections, beyond that 429), wait the configured latency while holding
the slot, apply an injected fault or hook, check the API key, then answer.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from mailchimp_emulator import api, control
from mailchimp_emulator.api import Call, Reply, classify, parse_json, problem_reply
from mailchimp_emulator.emulator_core import DEFAULT_API_KEY, EmulatorCore
from mailchimp_emulator.faults import RequestInfo
from mailchimp_emulator.problems import ApiProblem, api_key_invalid, not_found, too_many_requests

__all__ = ["DEFAULT_API_KEY", "MailchimpEmulator"]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not block stop()
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: MailchimpEmulator) -> None:
        self.emulator = emulator
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn): skip it.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]  # type: ignore[assignment]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: clients that hang up are normal, and tracebacks may quote addresses."""
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            sys.stderr.write(f"mailchimp emulator: {type(error).__name__} in a handler\n")

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate small writes
    server_version = "openresty"
    sys_version = ""
    timeout = 120  # Mailchimp times calls out at 120 s; also bounds idle keep-alive
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the default logs request lines, and paths can carry addresses."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        reply = self.server.emulator.dispatch(
            self.command, self.path, self.headers.get("Authorization"), raw
        )
        if reply.reset:
            # Linger 0 turns the close into a TCP RST: the client sees a connection reset.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.body:
            self.wfile.write(reply.body)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _serve


def _fault_reply(kind: str) -> Reply:
    if kind == "429":
        return problem_reply(too_many_requests())
    if kind == "403_bodyless":
        # What Mailchimp's edge sends when throttling at volume: no body, no content type.
        return Reply(403)
    if kind == "500":
        return problem_reply(
            ApiProblem(
                500,
                "Internal Server Error",
                "An unexpected internal error has occurred. "
                "Please contact Support for more information.",
            )
        )
    return Reply(0, reset=True)


class MailchimpEmulator(EmulatorCore):
    """A local Mailchimp Marketing API v3 for tests, the demo and benchmarks.

    >>> with MailchimpEmulator() as emu:
    ...     client.api_client.host = emu.base_url
    """

    _server: _HTTPServer | None = None
    _thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> Self:
        """Bind (port 0 picks a free port) and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._server = _HTTPServer((self._host, self._port), self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="mailchimp-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- request handling -----------------------------------------------------------

    def dispatch(self, method: str, target: str, authorization: str | None, raw: bytes) -> Reply:
        """Answer one HTTP request (called from the server's handler threads)."""
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        if parts.path.startswith("/_emulator/"):
            if not self.loopback:
                return problem_reply(not_found())
            return control.handle(self, method, parts.path, query, raw)
        kind, params = classify(method, parts.path)
        self._stats.record_call(method, kind)
        if not self._stats.enter():
            return problem_reply(too_many_requests())
        try:
            return self._serve_api(
                Call(method, kind, params, query, raw), parts.path, authorization
            )
        finally:
            self._stats.leave()

    def _serve_api(self, call: Call, path: str, authorization: str | None) -> Reply:
        epoch = self._epoch
        if self._latency_s:
            time.sleep(self._latency_s)  # like a slow network: the slot stays taken
        fault = self._faults.take(call.method, path)
        if fault is not None:
            self._stats.record_fault()
            if fault.kind != "slow":
                return _fault_reply(fault.kind)
            time.sleep(fault.seconds)
        if epoch != self._epoch:
            # A request still sleeping when reset() ran (a timed-out `slow` one, say)
            # must not land in the fresh audience of the next test.
            return Reply(0, reset=True)
        try:
            body = parse_json(call.body)
        except ApiProblem as problem:
            return problem_reply(problem)
        for hook in self._faults.hooks_for(call.method, path):
            try:
                hook(RequestInfo(call.method, path, call.query, body))
            except Exception as exc:  # a broken test hook must show, not hang the client
                detail = f"Emulator hook failed: {type(exc).__name__}"
                return problem_reply(ApiProblem(500, "Internal Server Error", detail))
        if not self._authorized(authorization):
            return problem_reply(api_key_invalid())
        if (
            call.kind == "batch"
            and isinstance(body, dict)
            and isinstance(body.get("members"), list)
        ):
            self._stats.record_batch(len(body["members"]))
        reply = api.handle(
            self._audiences, Call(call.method, call.kind, call.params, call.query, body)
        )
        if call.method != "GET":
            self._echo_api_events()
        return reply

    def _authorized(self, authorization: str | None) -> bool:
        """HTTP Basic, any user name, the API key as password."""
        if not authorization or not authorization.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(authorization[6:], validate=True)
        except ValueError:
            return False
        _, _, password = decoded.partition(b":")
        return hmac.compare_digest(password, self.api_key.encode())

    def _echo_api_events(self) -> None:
        """Webhooks with `sources.api` hear about API writes too (the feedback loop)."""
        events = [e for a in list(self._audiences.values()) for e in a.take_api_events()]
        if events:
            threading.Thread(target=self._deliver, args=(events, True), daemon=True).start()
