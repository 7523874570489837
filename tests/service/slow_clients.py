"""Hostile HTTP clients on loopback for the connection-bound tests: connections that send
nothing, or a request head one header at a time and never finish it (slowloris), and
`syncd serve` started under a descriptor limit (`ulimit -n`)."""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from tests.service.conftest import REPO, ServeProcess, free_port, syncd_env

PARTIAL_HEAD = b"POST /webhooks/mailchimp/not-a-secret HTTP/1.1\r\nHost: 127.0.0.1\r\n"


class SlowClients:
    """`count` connections to `port`, half silent and half trickling a request head."""

    def __init__(self, port: int, count: int) -> None:
        self.address = ("127.0.0.1", port)
        self.count = count
        self.sockets: list[socket.socket | None] = [None] * count
        self.heads_started: set[int] = set()
        self.closed_by_server = 0

    def _open(self, index: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(self.address)  # EINPROGRESS on loopback: done in a moment
        self.sockets[index] = sock
        self.heads_started.discard(index)

    def open_all(self) -> None:
        for index in range(self.count):
            self._open(index)

    def trickle(self) -> int:
        """One round: every other connection sends one more byte of its head; connections
        the server closed are counted and opened again. Returns how many were closed."""
        closed = 0
        for index, sock in enumerate(self.sockets):
            if sock is None:
                self._open(index)
                continue
            try:
                if sock.recv(4096) == b"":
                    raise ConnectionResetError
            except BlockingIOError:
                pass  # still open, nothing sent to us: as intended
            except OSError:
                closed += 1
                sock.close()
                self._open(index)
                continue
            if index % 2:
                with contextlib.suppress(OSError):
                    sock.send(b"X-Slow: 1\r\n" if index in self.heads_started
                              else PARTIAL_HEAD)
                    self.heads_started.add(index)
        self.closed_by_server += closed
        return closed

    def close(self) -> None:
        for sock in self.sockets:
            if sock is not None:
                sock.close()


@contextlib.contextmanager
def descriptors_for_the_test(needed: int) -> Iterator[None]:
    """The test process itself holds the hostile connections: raise its own soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def serve_limited(env: dict[str, str], descriptors: int, started: list[ServeProcess],
                  **popen: Any) -> ServeProcess:
    """`syncd serve` on a free loopback port with RLIMIT_NOFILE soft = hard = descriptors,
    as `ulimit -n` (or systemd's default) would give it."""
    port = free_port()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, descriptors))

    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=syncd_env(env), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, preexec_fn=limit, **popen)  # noqa: PLW1509 - rlimit only
    server = ServeProcess(proc, port)
    server.start_reading()
    started.append(server)
    return server
