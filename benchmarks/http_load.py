"""HTTP load loops shared by the webhook and sign-up benchmarks: keep-alive connections,
an open loop at a fixed rate, a closed loop of N clients, and latency percentiles.

Every loop is bounded in count AND time: an open loop stops scheduling after its
requests or its time budget, a closed loop after its budget or its stop time. All
traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# One request: (method, path, body).
Request = tuple[str, str, bytes]


# What a request that got no answer looks like: the server reset or closed the
# connection (an overloaded service sheds connections). Counted as status 0.
NO_ANSWER = (ConnectionError, OSError, asyncio.IncompleteReadError, IndexError, ValueError)


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1."""

    def __init__(self, port: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.port, self.reader, self.writer = port, reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(port, reader, writer)

    async def send(self, request: Request) -> tuple[int, bytes]:
        try:
            return await self._send(request)
        except (IndexError, ConnectionError, asyncio.IncompleteReadError):
            # The server closed this keep-alive connection while it sat idle, before
            # reading the request: open another and send it (the request was not seen).
            self.close()
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            return await self._send(request)

    async def _send(self, request: Request) -> tuple[int, bytes]:
        method, path, payload = request
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: MailChimp.com\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Tally:
    """Answers of one phase: latencies, statuses, and the indexes answered 2xx."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    answered_ok: list[int] = field(default_factory=list)

    def add(self, index: int, status: int, seconds: float) -> None:
        self.latencies.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            self.answered_ok.append(index)


def percentiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99),
            "max_ms": round(ordered[-1] * 1000, 2),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2)}


async def open_loop(port: int, requests: Sequence[Request], rate: float,
                    max_seconds: float) -> tuple[dict[str, Any], Tally]:
    """Each request sent at its scheduled moment, whatever the earlier ones do; latency
    from that moment to the answer (so a slow server shows as queueing, not as a lower
    rate). Stops scheduling after `max_seconds`; an answer still out then is awaited."""
    idle: list[Connection] = []
    tally = Tally()
    started = time.perf_counter()
    count = min(len(requests), int(rate * max_seconds))

    async def one(n: int) -> None:
        due = started + n / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        try:
            conn = idle.pop() if idle else await Connection.open(port)
            status, _ = await conn.send(requests[n])
        except NO_ANSWER:
            tally.add(n, 0, time.perf_counter() - due)
            return
        tally.add(n, status, time.perf_counter() - due)
        idle.append(conn)

    await asyncio.gather(*(one(n) for n in range(count)))
    for conn in idle:
        conn.close()
    elapsed = time.perf_counter() - started
    return ({"rate_per_second": rate, "requests": count, "seconds": round(elapsed, 2),
             "achieved_per_second": round(count / elapsed, 1), "connections_used": len(idle),
             "statuses": tally.statuses, **percentiles(tally.latencies)}, tally)


async def closed_loop(port: int, requests: Sequence[Request], clients: int,
                      max_seconds: float) -> tuple[dict[str, Any], Tally]:
    """N clients, each sending its next request when the last is answered, until the
    requests run out or `max_seconds` pass: the sustained rate."""
    queue = list(reversed(range(len(requests))))
    tally = Tally()
    started = time.perf_counter()
    stop_at = started + max_seconds

    async def client() -> None:
        conn: Connection | None = None
        while queue and time.perf_counter() < stop_at:
            n = queue.pop()
            sent = time.perf_counter()
            try:
                conn = conn or await Connection.open(port)
                status, _ = await conn.send(requests[n])
            except NO_ANSWER:
                status, conn = 0, None
            tally.add(n, status, time.perf_counter() - sent)
        if conn is not None:
            conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    done = len(tally.latencies)
    return ({"clients": clients, "requests": done, "seconds": round(elapsed, 2),
             "per_second": round(done / elapsed, 1), "statuses": tally.statuses,
             **percentiles(tally.latencies)}, tally)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc): the load-independent cost."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, phase: Callable[[], tuple[dict[str, Any], Tally]]
             ) -> tuple[dict[str, Any], Tally]:
    """Run one phase and add the server's CPU per request it cost."""
    before = cpu_seconds(pid)
    summary, tally = phase()
    spent = cpu_seconds(pid) - before
    summary["server_cpu_ms_per_request"] = round(spent / max(1, summary["requests"]) * 1000,
                                                 3)
    return summary, tally
