"""Rate limits for the sign-up endpoints: a sliding window per key (client IP, keyed hash
of the address), in memory, per process. Bounded: at most `max_keys` keys are tracked,
the least recently seen are forgotten first."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class SlidingWindow:
    def __init__(self, limit: int, seconds: float, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.seconds = seconds
        self.max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        """Count one request for `key`. None when allowed; else the seconds to wait
        (for Retry-After), and the request is not counted."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
                while len(self._hits) > self.max_keys:
                    self._hits.popitem(last=False)
            else:
                self._hits.move_to_end(key)
            while hits and hits[0] <= now - self.seconds:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.seconds - now))
            hits.append(now)
            return None
