"""Injected failures, request hooks and call statistics.

Fault kinds mirror what a Mailchimp client meets in production (see the error table in
the Mailchimp reference): throttling as 429 problem+json or as a 403 with NO body (the
official client hands that back as a plain `requests.Response`), 5xx, slow answers
and connection resets.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

FaultKind = Literal["429", "403_bodyless", "500", "slow", "reset"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


@dataclass(frozen=True)
class RequestInfo:
    """What a hook sees of the request it runs before."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


Hook = Callable[[RequestInfo], None]


@dataclass
class Fault:
    kind: FaultKind
    remaining: int | None  # None: until cleared (with `probability`)
    match: re.Pattern[str] | None = None
    probability: float = 1.0
    seconds: float = 1.0

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "match": self.match.pattern if self.match else None,
            "probability": self.probability,
            "seconds": self.seconds,
        }


@dataclass
class _HookEntry:
    hook: Hook
    match: re.Pattern[str] | None
    remaining: int | None


def _matches(pattern: re.Pattern[str] | None, method: str, path: str) -> bool:
    # Patterns are searched in "METHOD /path", e.g. r"^POST /3\.0/lists/[^/]+$".
    return pattern is None or pattern.search(f"{method} {path}") is not None


class FaultPlan:
    """A thread-safe queue of faults and hooks, consumed by matching requests."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._hooks: list[_HookEntry] = []
        self._random = random.Random(seed)  # noqa: S311 - fault sampling, not security

    def add(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; one of {FAULT_KINDS}")
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The first pending fault for this request, consumed; None if none applies."""
        with self._lock:
            for fault in self._faults:
                if not _matches(fault.match, method, path):
                    continue
                if fault.probability < 1.0 and self._random.random() >= fault.probability:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
            return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def add_hook(self, hook: Hook, match: re.Pattern[str] | None, times: int | None) -> None:
        with self._lock:
            self._hooks.append(_HookEntry(hook, match, times))

    def hooks_for(self, method: str, path: str) -> list[Hook]:
        with self._lock:
            chosen: list[Hook] = []
            for entry in list(self._hooks):
                if not _matches(entry.match, method, path):
                    continue
                chosen.append(entry.hook)
                if entry.remaining is not None:
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        self._hooks.remove(entry)
            return chosen

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._hooks.clear()


@dataclass(frozen=True)
class StatsSnapshot:
    calls: dict[str, int]  # "PUT member" -> count, every /3.0 request that arrived
    write_calls: int  # PUT/PATCH/POST/DELETE, ping excluded
    peak_concurrency: int
    in_flight: int
    batch_sizes: list[int]  # members per batch call, in arrival order
    throttled: int  # 429s for exceeding the connection limit
    faults_served: int

    def count(self, method: str, kind: str) -> int:
        return self.calls.get(f"{method} {kind}", 0)

    def as_json(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "write_calls": self.write_calls,
            "peak_concurrency": self.peak_concurrency,
            "in_flight": self.in_flight,
            "batch_sizes": list(self.batch_sizes),
            "throttled": self.throttled,
            "faults_served": self.faults_served,
        }


@dataclass
class Stats:
    """Counters and the in-flight gate (Mailchimp: 10 simultaneous connections)."""

    max_in_flight: int = 10
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _calls: dict[str, int] = field(default_factory=dict)
    _writes: int = 0
    _peak: int = 0
    _in_flight: int = 0
    _batch_sizes: list[int] = field(default_factory=list)
    _throttled: int = 0
    _faults: int = 0

    def record_call(self, method: str, kind: str) -> None:
        with self._lock:
            key = f"{method} {kind}"
            self._calls[key] = self._calls.get(key, 0) + 1
            if method != "GET" and kind != "ping":
                self._writes += 1

    def record_batch(self, size: int) -> None:
        with self._lock:
            self._batch_sizes.append(size)

    def record_fault(self) -> None:
        with self._lock:
            self._faults += 1

    def enter(self) -> bool:
        """Take an in-flight slot; False (and counted as throttled) when all are taken."""
        with self._lock:
            if self._in_flight >= self.max_in_flight:
                self._throttled += 1
                return False
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            return True

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                dict(self._calls),
                self._writes,
                self._peak,
                self._in_flight,
                list(self._batch_sizes),
                self._throttled,
                self._faults,
            )

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._batch_sizes.clear()
            self._writes = self._throttled = self._faults = 0
            self._peak = self._in_flight
