"""Graceful shutdown, the rq way: the first SIGTERM/SIGINT stops new work and lets the
current batch finish and checkpoint; the second one exits at once.

Order on the first signal:
1. the scheduler starts nothing new (`shutdown(wait=False)`) and the `stop` event tells a
   running sync or reconciliation to finish its current batch, checkpoint and return;
2. the HTTP server keeps answering meanwhile: a webhook that arrives during the drain is
   stored and applied, not refused (I4);
3. when no job runs any more, or when the bound (`shutdown_timeout_seconds`) is reached,
   the HTTP server stops (uvicorn `should_exit`).
A run cut off by the bound or by a second signal is safe to cut: the cursor never passes
an unconfirmed push (I8), so the next run at most re-pushes a batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from typing import Any, Protocol

from syncd.logs import get_logger
from syncd.service.jobs import JobRunner

log = get_logger("syncd.service.shutdown")

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Stoppable(Protocol):
    should_exit: bool


class GracefulShutdown:
    def __init__(self, runner: JobRunner, scheduler: Any, timeout: float) -> None:
        self.runner = runner
        self.scheduler = scheduler
        self.timeout = timeout
        self.server: _Stoppable | None = None
        self.requested_at: float | None = None
        self.drained = threading.Event()
        self._lock = threading.Lock()

    def install(self) -> None:
        """Own SIGTERM/SIGINT from now on (uvicorn hands them to `request` while it runs)."""
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, lambda signum, _frame: self.request(signum))

    def request(self, signum: int) -> None:
        """Signal handler: the first call starts the drain, the second exits now."""
        with self._lock:
            first = self.requested_at is None
            if first:
                self.requested_at = time.monotonic()
        name = signal.Signals(signum).name
        if not first:
            log.warning("second signal: exiting now; the next run resumes from the checkpoint",
                        signal=name, running=self.runner.running())
            flush_logs()
            os._exit(128 + signum)
        log.info("shutdown requested: no new runs; finishing the current batch", signal=name,
                 running=self.runner.running(), bound_s=self.timeout)
        self.runner.stop.set()
        threading.Thread(target=self._drain, name="syncd-shutdown", daemon=True).start()

    def _drain(self) -> None:
        try:
            self.scheduler.shutdown(wait=False)
        except Exception as exc:  # already stopped (e.g. never started): nothing to stop
            log.debug("scheduler shutdown", error=type(exc).__name__)
        if not self.runner.wait_idle(self.remaining()):
            log.warning("shutdown bound reached with a run still going; stopping anyway",
                        running=self.runner.running(), bound_s=self.timeout)
        self.drained.set()
        if self.server is not None:
            self.server.should_exit = True

    def remaining(self) -> float:
        if self.requested_at is None:
            return self.timeout
        return max(0.0, self.requested_at + self.timeout - time.monotonic())

    def finish(self) -> bool:
        """After the HTTP server stopped: True if every job finished within the bound."""
        self.drained.wait(self.remaining() + 1.0)
        return self.runner.wait_idle(self.remaining())


def flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        # Exiting anyway: a closed stream must not stop it.
        with contextlib.suppress(Exception):
            handler.flush()
