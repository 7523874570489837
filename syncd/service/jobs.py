"""The service's recurring jobs. Each calls exactly the function its one-shot command calls
(`syncd sync` -> run_sync, `syncd reconcile` -> run_reconcile, inbox retry, `syncd prune`),
so "once" and "forever" share one code path.

The wrapper around every job: one summary line per run (kind, outcome, counts,
duration), metrics, and the single-runner rule (I7) as a non-event: a run that finds the
lock held logs one line and returns."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from syncd import metrics
from syncd.context import AppContext
from syncd.logs import get_logger
from syncd.run_summary import log_summary, summarise
from syncd.runner_lock import RunnerBusy
from syncd.service.alerts import AlertNotifier

__all__ = ["BUSY_MESSAGE", "JobRunner", "summarise"]

log = get_logger("syncd.service.jobs")

SYNC, RECONCILE, INBOX_RETRY, PRUNE = "sync", "reconcile", "inbox-retry", "prune"
OUTBOX = "outbox"
BUSY_MESSAGE = "skipped: another runner holds the lock"


class JobRunner:
    """Runs jobs for the scheduler; knows which are running so shutdown can wait for them."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        # Set on the first SIGTERM: run_sync/run_reconcile finish the current batch,
        # checkpoint and return; jobs that have not started yet do not start.
        self.stop = threading.Event()
        self._running: dict[str, int] = {}
        self.alerts = AlertNotifier(ctx)
        self._idle = threading.Condition()

    # -- the jobs: exactly what the one-shot commands call ------------------------------

    def sync(self, target: str | None = None) -> None:
        """Sync one target (None: the only one); job kind `sync` or `sync:NAME`."""
        from syncd.sync.run import run_sync

        kind = SYNC if target is None else f"{SYNC}:{target}"
        self.run(kind, lambda: run_sync(self.ctx, target=self.ctx.settings.target(target),
                                        stop=self.stop))

    def reconcile(self, target: str | None = None) -> None:
        from syncd.inbound.reconcile import run_reconcile

        kind = RECONCILE if target is None else f"{RECONCILE}:{target}"
        self.run(kind, lambda: run_reconcile(
            self.ctx, target=self.ctx.settings.target(target), stop=self.stop))

    def inbox_retry(self) -> None:
        from syncd.webhooks.inbox import retry_pending

        self.run(INBOX_RETRY, lambda: {"retried": retry_pending(self.ctx)})

    def prune(self) -> None:
        from syncd.retention import prune

        self.run(PRUNE, lambda: prune(self.ctx))

    def outbox(self) -> None:
        """Send the due mails of the sign-up outbox (syncd's own double opt-in)."""
        from syncd.service.smtp_sender import SmtpSender
        from syncd.signup.outbox import deliver_due

        sender = SmtpSender(self.ctx.settings)
        self.run(OUTBOX, lambda: deliver_due(self.ctx, sender, stop=self.stop.is_set),
                 quiet=lambda result: bool(getattr(result, "idle", False)))

    # -- the wrapper ----------------------------------------------------------------

    def run(self, kind: str, call: Callable[[], Any],
            quiet: Callable[[Any], bool] | None = None) -> None:
        """Run one job, then check the alert conditions; never raises (a raising job would
        only reach APScheduler's log). `quiet(result)` true: nothing happened, so no summary
        line and no alert check (the outbox job runs every few seconds)."""
        if not self._run(kind, call, quiet):
            return
        if self.stop.is_set():
            return
        try:
            self.alerts.check()
        except Exception as exc:  # the database may be down: the next check retries
            log.warning("alert check failed", error=type(exc).__name__)

    def _run(self, kind: str, call: Callable[[], Any],
             quiet: Callable[[Any], bool] | None) -> bool:
        """Run the job; False when it did nothing worth an alert check."""
        if self.stop.is_set():
            metrics.JOB_RUNS.labels(kind, "skipped").inc()
            return False
        self._enter(kind)
        started = time.monotonic()
        try:
            result = call()
        except RunnerBusy:
            metrics.JOB_RUNS.labels(kind, "busy").inc()
            log.info(BUSY_MESSAGE, kind=kind)
            return False
        except Exception as exc:  # the scheduler must outlive any one run
            metrics.JOB_RUNS.labels(kind, "failed").inc()
            log.error("run finished", kind=kind, outcome="failed",
                      error=f"{type(exc).__name__}: {exc}",
                      duration_s=round(time.monotonic() - started, 3),
                      exc_info=not _expected(exc))
            return True
        finally:
            self._leave(kind)
        if quiet is not None and quiet(result):
            metrics.JOB_RUNS.labels(kind, "succeeded").inc()
            return False
        outcome = log_summary(kind, result, time.monotonic() - started)
        metrics.JOB_RUNS.labels(kind, outcome).inc()
        if outcome in ("succeeded", "partial"):
            metrics.LAST_SUCCESS.labels(kind).set(time.time())
        return True

    def _enter(self, kind: str) -> None:
        with self._idle:
            self._running[kind] = self._running.get(kind, 0) + 1
        metrics.JOBS_RUNNING.labels(kind).inc()

    def _leave(self, kind: str) -> None:
        metrics.JOBS_RUNNING.labels(kind).dec()
        with self._idle:
            self._running[kind] -= 1
            if not self._running[kind]:
                del self._running[kind]
            self._idle.notify_all()

    def running(self) -> list[str]:
        with self._idle:
            return sorted(self._running)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs; False if some still run after `timeout` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, timeout=max(timeout, 0))


def _expected(exc: Exception) -> bool:
    """Errors that say what went wrong in their message; a traceback is for bugs only."""
    from syncd.errors import ConfigError, SyncdError

    return isinstance(exc, SyncdError | ConfigError)
