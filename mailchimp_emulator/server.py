"""The emulator's HTTP server and its Python control surface, `MailchimpEmulator`.

A stdlib ThreadingHTTPServer speaking HTTP/1.1 (keep-alive for pooled sessions). Each
`/3.0` request: count it, take one of the in-flight slots (Mailchimp allows 10
simultaneous connections, beyond that 429), wait the configured latency while holding
the slot, apply an injected fault or hook, check the API key, then answer.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import ipaddress
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from mailchimp_emulator import api, control
from mailchimp_emulator.api import Call, Reply, classify, parse_json, problem_reply
from mailchimp_emulator.audience import (
    DEFAULT_LIST_ID,
    Audience,
    AudienceEvent,
    AudienceRules,
    Clock,
)
from mailchimp_emulator.faults import (
    Fault,
    FaultKind,
    FaultPlan,
    Hook,
    RequestInfo,
    Stats,
    StatsSnapshot,
)
from mailchimp_emulator.problems import ApiProblem, api_key_invalid, not_found, too_many_requests
from mailchimp_emulator.webhook_delivery import Delivery, encode, post

# Looks like a real key (`<32 hex>-<datacenter>`) so that key parsing code is exercised.
DEFAULT_API_KEY = "5e7e1e55c0ffee0ddba11fee1dcafe00-us1"


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


class MailchimpEmulator:
    """A local Mailchimp Marketing API v3 for tests, the demo and benchmarks.

    >>> with MailchimpEmulator() as emu:
    ...     client.api_client.host = emu.base_url
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        list_id: str = DEFAULT_LIST_ID,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        max_connections: int = 10,
        rules: AudienceRules | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
    ) -> None:
        self.api_key = api_key
        self.audience = Audience(list_id, rules=rules, clock=clock)
        self._host, self._port = host, port
        self._latency_s = latency_ms / 1000
        self._stats = Stats(max_in_flight=max_connections)
        self._initial = (self.audience.rules, self._latency_s, max_connections)
        self._epoch = 0  # bumped by reset()
        self._faults = FaultPlan(seed)
        self._undelivered: list[tuple[str, str, bytes]] = []
        self._undelivered_lock = threading.Lock()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

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

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """What `client.api_client.host` should be: `http://127.0.0.1:PORT/3.0`."""
        return f"http://{self._host}:{self._port}/3.0"

    @property
    def control_url(self) -> str:
        return f"http://{self._host}:{self._port}/_emulator"

    @property
    def list_id(self) -> str:
        return self.audience.list_id

    @property
    def state(self) -> Audience:
        return self.audience

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self._host).is_loopback
        except ValueError:
            return self._host == "localhost"

    # -- knobs ----------------------------------------------------------------------

    def set_latency(self, ms: float) -> None:
        self._latency_s = max(ms, 0) / 1000

    @property
    def latency_ms(self) -> float:
        return self._latency_s * 1000

    def set_max_connections(self, limit: int) -> None:
        self._stats.max_in_flight = limit

    @property
    def max_connections(self) -> int:
        return self._stats.max_in_flight

    def configure(self, **rules: Any) -> AudienceRules:
        """Change audience rules, e.g. `configure(allow_api_resubscribe=True)`."""
        return self.audience.configure(**rules)

    def inject_fault(
        self,
        kind: FaultKind,
        *,
        count: int | None = 1,
        match: str | None = None,
        probability: float = 1.0,
        seconds: float = 1.0,
    ) -> None:
        """Make the next `count` matching `/3.0` requests fail with `kind`.

        `match` is a regex searched in "METHOD /path" (e.g. r"^PUT .*/members/");
        `probability` < 1 hits only that share of matching requests; `count=None`
        keeps the fault until `clear_faults()`; `seconds` is the delay of `slow`.
        """
        pattern = re.compile(match) if match else None
        self._faults.add(Fault(kind, count, pattern, probability, seconds))

    def set_hook(self, hook: Hook, *, match: str | None = None, times: int | None = None) -> None:
        """Run `hook(RequestInfo)` before matching `/3.0` requests are handled."""
        self._faults.add_hook(hook, re.compile(match) if match else None, times)

    def clear_faults(self) -> None:
        """Drop pending faults and hooks."""
        self._faults.clear()

    def pending_faults(self) -> list[dict[str, Any]]:
        return self._faults.pending()

    @property
    def stats(self) -> StatsSnapshot:
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        self._stats.reset()

    def reset(self) -> None:
        """As freshly constructed, on the same port: empty audience and webhooks, the
        constructor's rules, latency and connection limit, no faults or hooks, zero stats."""
        self._epoch += 1
        self.audience.rules, self._latency_s, self._stats.max_in_flight = self._initial
        self.audience.reset()
        self._faults.clear()
        self._stats.reset()
        with self._undelivered_lock:
            self._undelivered.clear()

    # -- members, for assertions ----------------------------------------------------

    def member(self, email_or_hash: str) -> dict[str, Any] | None:
        return self.audience.member(email_or_hash)

    def members(self, status: str | None = None) -> list[dict[str, Any]]:
        return self.audience.members(status)

    def confirmation_mails_sent(self, email: str) -> int:
        return self.audience.confirmation_mails_sent(email)

    def seed_member(self, email: str, status: str = "subscribed", **fields: Any) -> dict[str, Any]:
        """Put an existing member in place, bypassing the API rules."""
        return self.audience.seed(email, status, **fields)

    # -- Mailchimp-side events, delivered as webhooks -------------------------------

    def fire_subscribe(
        self,
        email: str,
        merges: Mapping[str, str] | None = None,
        *,
        ip_opt: str = "",
        source: str = "user",
        deliver: bool = True,
    ) -> list[Delivery]:
        """A signup form, or the person confirming a double opt-in mail."""
        events = self.audience.user_subscribes(email, merges=merges, ip_opt=ip_opt, source=source)
        return self._deliver(events, deliver)

    def fire_unsubscribe(
        self,
        email: str,
        reason: str = "manual",
        campaign_id: str | None = None,
        *,
        action: str | None = "unsub",
        source: str = "user",
        deliver: bool = True,
    ) -> list[Delivery]:
        """The person unsubscribes (`manual`) or marks a mail as spam (`abuse`)."""
        events = self.audience.user_unsubscribes(
            email, reason=reason, campaign_id=campaign_id, action=action, source=source
        )
        return self._deliver(events, deliver)

    def fire_cleaned(
        self,
        email: str,
        reason: str = "hard",
        campaign_id: str | None = None,
        *,
        source: str = "user",
        deliver: bool = True,
    ) -> list[Delivery]:
        events = self.audience.user_cleaned(
            email, reason=reason, campaign_id=campaign_id, source=source
        )
        return self._deliver(events, deliver)

    def fire_profile(
        self, email: str, merges: Mapping[str, str], *, source: str = "user", deliver: bool = True
    ) -> list[Delivery]:
        return self._deliver(
            self.audience.user_updates_profile(email, merges, source=source), deliver
        )

    def fire_upemail(
        self, old: str, new: str, *, source: str = "user", deliver: bool = True
    ) -> list[Delivery]:
        """Sends `upemail` and then `profile`, as Mailchimp does."""
        return self._deliver(self.audience.user_changes_email(old, new, source=source), deliver)

    def fire_campaign(
        self, campaign_id: str, subject: str = "", status: str = "sent", *, deliver: bool = True
    ) -> list[Delivery]:
        return self._deliver(
            self.audience.campaign_sent(campaign_id, subject=subject, status=status), deliver
        )

    def redeliver_failed(self) -> list[Delivery]:
        """Retry deliveries that got no 2xx (Mailchimp retries for 75 minutes)."""
        with self._undelivered_lock:
            queued, self._undelivered = self._undelivered, []
        return [self._post(url, kind, body) for url, kind, body in queued]

    def _deliver(self, events: list[AudienceEvent], deliver: bool) -> list[Delivery]:
        if not deliver:  # a lost webhook: the state changed, nobody was told
            return []
        known = self.audience.rules.known_merge_fields
        return [
            self._post(url, event.type, encode(event, known))
            for event in events
            for url in self.audience.webhook_targets(event)
        ]

    def _post(self, url: str, kind: str, body: bytes) -> Delivery:
        delivery = post(url, kind, body)
        if not delivery.ok:
            with self._undelivered_lock:
                self._undelivered.append((url, kind, body))
        return delivery

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
            self.audience, Call(call.method, call.kind, call.params, call.query, body)
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
        events = self.audience.take_api_events()
        if events:
            threading.Thread(target=self._deliver, args=(events, True), daemon=True).start()
