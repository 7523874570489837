"""`syncd serve`: one process running the HTTP app (uvicorn) and the scheduler.

uvicorn runs in the main thread (it owns the signals while it runs and hands them to
our shutdown); the scheduler runs its jobs in worker threads."""

from __future__ import annotations

import contextlib
import logging
import os
from types import FrameType

import uvicorn

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.exit_codes import ExitCode
from syncd.logs import get_logger
from syncd.service.app import create_app
from syncd.service.connections import (
    ACCEPT_BURST,
    ConnectionGuard,
    bound_log_rates,
    connection_limit,
    descriptor_limit,
    guarded_protocol,
)
from syncd.service.jobs import JobRunner
from syncd.service.scheduler import build_scheduler
from syncd.service.shutdown import GracefulShutdown, flush_logs

log = get_logger("syncd.service")

# uvicorn's own share of the bound: finishing open HTTP requests (webhooks answer fast).
HTTP_DRAIN_SECONDS = 5.0
# Largest request head (request line and headers) h11 buffers; longer ones get 400.
MAX_HEAD_BYTES = 16 * 1024


def _plain_uvicorn_records(record: logging.LogRecord) -> bool:
    """uvicorn attaches a `color_message` copy with terminal colour codes; the structured
    line needs only the message."""
    record.__dict__.pop("color_message", None)
    return True


class _Server(uvicorn.Server):
    """uvicorn, with its signal handling handed to GracefulShutdown: it must not stop the
    HTTP side before the running batch has checkpointed, nor re-raise the signal after."""

    def __init__(self, config: uvicorn.Config, shutdown: GracefulShutdown) -> None:
        super().__init__(config)
        self.shutdown_control = shutdown

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.shutdown_control.request(sig)


def serve(ctx: AppContext, *, host: str, port: int) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    started_at = utcnow()
    runner = JobRunner(ctx)
    scheduler = build_scheduler(runner, ctx.settings, now=started_at)
    shutdown = GracefulShutdown(runner, scheduler, ctx.settings.shutdown_timeout_seconds)
    app = create_app(ctx, started_at=started_at, webhooks=ctx.settings.webhook_enabled)
    settings = ctx.settings
    descriptors = descriptor_limit()
    guard = ConnectionGuard(connection_limit(settings.http_max_connections, descriptors),
                            settings.http_header_timeout_seconds)
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, log_level=None,
        lifespan="on", server_header=False, http=guarded_protocol(guard),
        timeout_keep_alive=settings.http_keep_alive_seconds,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=MAX_HEAD_BYTES, backlog=ACCEPT_BURST,
        timeout_graceful_shutdown=int(min(HTTP_DRAIN_SECONDS,
                                          settings.shutdown_timeout_seconds)),
    )
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(_plain_uvicorn_records)
    bound_log_rates()
    if guard.limit < settings.http_max_connections:
        log.warning("http connection limit lowered to fit the descriptor limit "
                    "(raise LimitNOFILE / ulimit -n)", configured=settings.http_max_connections,
                    limit=guard.limit, descriptor_limit=descriptors)
    server = _Server(config, shutdown)
    shutdown.server = server
    shutdown.install()
    log.info("service starting", host=host, port=port, pid=os.getpid(),
             sync_interval_minutes=ctx.settings.sync_interval_minutes,
             reconcile_interval_minutes=ctx.settings.reconcile_interval_minutes,
             inbox_retry_interval_minutes=ctx.settings.inbox_retry_interval_minutes,
             max_connections=guard.limit, webhooks=settings.webhook_enabled)
    scheduler.start()
    with contextlib.suppress(SystemExit):  # uvicorn's way out when it cannot bind
        server.run()
    if not server.started:
        log.error("HTTP server did not start", host=host, port=port)
        runner.stop.set()
        scheduler.shutdown(wait=False)
        return int(ExitCode.FAILED)
    if shutdown.requested_at is None:  # the server stopped on its own: treat as a stop
        shutdown.request(15)
    if not shutdown.finish():
        log.error("shutdown bound reached; exiting with a run unfinished "
                  "(the next run resumes from its checkpoint)", running=runner.running())
        flush_logs()
        os._exit(int(ExitCode.FAILED))  # worker threads cannot be joined: leave now
    app.state.probe.close()
    log.info("service stopped")
    return int(ExitCode.OK)
