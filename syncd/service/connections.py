"""Bounded HTTP connections for `syncd serve`: a cap below the descriptor limit, a
deadline for every request head, overload answered 503 with Retry-After, and log lines
about it at a bounded rate.

uvicorn closes idle keep-alive connections but gives a request head no deadline: a
client that connects and sends nothing, or one header byte every few seconds
(slowloris), kept its descriptor forever, and 1,000 of them under the usual 1,024
descriptor limit starved /healthz and every webhook while asyncio logged "Too many open
files" in a loop (docs/threats.md). Here:

- a connection has `header_timeout` to deliver a complete request head, from when it
  opens and again after each answer; then it is closed;
- at most `limit` connections are open (kept below the descriptor limit, so accept()
  never fails for lack of one). One more arriving pushes out the OLDEST connection still
  waiting for its request head (a real client, Mailchimp included, sends its head at
  once; the long waiters are the attackers'); when every connection is busy with a
  request, the newcomer is answered 503 with Retry-After and closed;
- each connection shed is counted (`syncd_http_connections_shed_total`), the open ones
  are a gauge, and the warning about it is written at most once per `LOG_INTERVAL`.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

from syncd.logs import get_logger
from syncd.metrics import HTTP_CONNECTIONS_OPEN, HTTP_CONNECTIONS_SHED

log = get_logger("syncd.service.http")

LOG_INTERVAL = 10.0
RETRY_AFTER_SECONDS = 5
# Descriptors kept back for everything that is not a client connection: database pools
# (SQLite: three files per connection), logs, threads' pipes, the listening socket.
MIN_RESERVED_DESCRIPTORS = 128
# The listen backlog, which is also how many connections asyncio accepts in one go before
# any of them reaches the guard: the reserve must cover one such burst too.
ACCEPT_BURST = 64
# Raised at start from the soft towards the hard limit, at most to this.
WANTED_DESCRIPTORS = 65536
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
           b"Retry-After: " + str(RETRY_AFTER_SECONDS).encode() + b"\r\n"
           b"Content-Length: 34\r\nConnection: close\r\n\r\n"
           b"overloaded, retry after a moment\r\n")


def descriptor_limit() -> int:
    """The soft RLIMIT_NOFILE, raised to the hard limit (at most WANTED_DESCRIPTORS) when
    the hard one allows: systemd's default soft limit is 1,024 with a far higher hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = WANTED_DESCRIPTORS if hard == resource.RLIM_INFINITY else min(hard,
                                                                             WANTED_DESCRIPTORS)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return WANTED_DESCRIPTORS if soft == resource.RLIM_INFINITY else int(soft)


def connection_limit(configured: int, descriptors: int) -> int:
    """`configured`, lowered to what `descriptors` leave after the reserve."""
    reserve = max(MIN_RESERVED_DESCRIPTORS + ACCEPT_BURST, descriptors // 8)
    return max(16, min(configured, descriptors - reserve))


class ConnectionGuard:
    """The open connections of one server, oldest first, and the shedding policy."""

    def __init__(self, limit: int, header_timeout: float) -> None:
        self.limit = limit
        self.header_timeout = header_timeout
        self._open: dict[GuardedH11, None] = {}  # insertion order is age
        self._shed: Counter[str] = Counter()
        self._last_log = float("-inf")

    @property
    def open_count(self) -> int:
        return len(self._open)

    def admit(self, conn: GuardedH11) -> bool:
        """Make room for `conn`; False when every open connection is busy."""
        if len(self._open) >= self.limit:
            victim = next((c for c in self._open if c.waiting_for_head()), None)
            if victim is None:
                self.shed("refused")
                return False
            self.release(victim)
            victim.transport.close()
            self.shed("evicted")
        self._open[conn] = None
        HTTP_CONNECTIONS_OPEN.set(len(self._open))
        return True

    def release(self, conn: GuardedH11) -> None:
        if self._open.pop(conn, 0) is None:
            HTTP_CONNECTIONS_OPEN.set(len(self._open))

    def shed(self, reason: str) -> None:
        HTTP_CONNECTIONS_SHED.labels(reason).inc()
        self._shed[reason] += 1
        now = time.monotonic()
        if now - self._last_log >= LOG_INTERVAL:
            # One line per interval, whatever the attack's rate (no log flood).
            log.warning("http connections shed", open=len(self._open), limit=self.limit,
                        header_timeout_seconds=self.header_timeout,
                        **{f"{name}_since_last": count for name, count in self._shed.items()})
            self._shed.clear()
            self._last_log = now


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and admission by the guard."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._cycle_seen: object = None

    def waiting_for_head(self) -> bool:
        """No request in progress: a new connection, or an idle keep-alive one."""
        return self.cycle is None or bool(self.cycle.response_complete)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.guard.admit(self):
            transport.write(REFUSAL)
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and self.cycle is not self._cycle_seen:
            self._disarm()  # a complete request head arrived

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.waiting_for_head():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.guard.release(self)
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._cycle_seen = self.cycle
        self._head_timer = self.loop.call_later(self.guard.header_timeout, self._head_late)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self.waiting_for_head() and not self.transport.is_closing():
            self.guard.release(self)
            self.guard.shed("header_timeout")
            self.transport.close()


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11]:
    """The protocol class to give uvicorn (`http=`), bound to `guard`."""
    return type("GuardedH11ForServer", (GuardedH11,), {"guard": guard})


class BoundedRate(logging.Filter):
    """At most one record per message template per `interval` seconds; the next one let
    through carries how many were dropped (`suppressed`). For loggers an attacker can make
    write per connection (asyncio's accept errors, uvicorn's "Invalid HTTP request")."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self._dropped: Counter[tuple[str, str]] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self._last.get(key, float("-inf")) < self.interval:
            self._dropped[key] += 1
            return False
        self._last[key] = now
        dropped = self._dropped.pop(key, 0)
        if dropped:
            record.suppressed = dropped
        return True


def bound_log_rates(names: tuple[str, ...] = ("asyncio", "uvicorn.error")) -> BoundedRate:
    bounded = BoundedRate()
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, BoundedRate) for f in logger.filters):
            logger.addFilter(bounded)
    return bounded
