"""The service's HTTP app: the Mailchimp webhook endpoint, health, readiness, metrics, and
the operator's endpoints (the status page and the DSAR API, syncd.service.operator).

Access logging is ours, not uvicorn's: uvicorn's access line carries the raw path and
query string, and the webhook path carries the shared secret (Mailchimp authenticates
webhooks by nothing else). We log the route template (`/webhooks/mailchimp/{secret}`),
never the path (I9)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd import metrics
from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.logs import get_logger
from syncd.migrate import current_revision, head_revision
from syncd.service.web import NO_TELEMETRY
from syncd.store import status
from syncd.sync.held import NOTHING_HELD, Held, held_by_audience, held_now

log = get_logger("syncd.service.http")

# Readiness answers fast even when the database hangs: a probe that takes longer fails.
PROBE_TIMEOUT_SECONDS = 2.0
# Outcomes of a run that completed (a partial run parked some contacts, but ran).
# "refused": the safety limit held the unsubscribes, the adds and updates went.
SUCCESS_OUTCOMES = ("succeeded", "partial", "refused")
# Probes and scrapes come every few seconds: logged at debug, everything else at info.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

T = TypeVar("T")


class SingleFlight:
    """Run a blocking call in a worker thread, wait at most `timeout`. Concurrent callers
    share the call in flight, so a hung database never piles up threads."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="syncd-probe")
        self._lock = threading.Lock()
        self._pending: dict[str, Future[Any]] = {}

    def __call__(self, key: str, fn: Callable[[], T]) -> T:
        with self._lock:
            pending = self._pending.get(key)
            if pending is None or pending.done():
                pending = self._executor.submit(fn)
                self._pending[key] = pending
        result: T = pending.result(timeout=self.timeout)
        return result

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class DatabaseFacts:
    revision: str | None
    last_sync_at: datetime | None
    held: Held = NOTHING_HELD


def _database_facts(ctx: AppContext) -> DatabaseFacts:
    status.ping(ctx.engine)
    with ctx.sessions() as session:
        last = status.last_success_by_kind(session, SUCCESS_OUTCOMES).get("sync")
        held = held_now(session, _audiences(ctx))
    return DatabaseFacts(current_revision(ctx.engine), last, held)


def _refresh_gauges(ctx: AppContext) -> None:
    """Gauges every replica can answer alike, from the database: the last successful run
    of each kind (whichever replica ran it), the parked inbox events and the unsubscribes
    the safety limit holds."""
    with ctx.sessions() as session:
        last = status.last_success_by_kind(session, SUCCESS_OUTCOMES)
        parked = status.inbox_count(session, "parked")
        held = held_by_audience(session, _audiences(ctx))
    for kind, finished in last.items():
        metrics.LAST_SUCCESS.labels(kind).set(finished.timestamp())
    metrics.INBOX_PARKED.set(parked)
    for audience, one in held.items():
        metrics.HELD_UNSUBSCRIBES.labels(audience).set(one.unsubscribes)


def _audiences(ctx: AppContext) -> tuple[str, ...]:
    """The audiences of the sync targets (none configured: none)."""
    return tuple(t.audience_id for t in ctx.settings.sync_targets)


def _webhook_state(ctx: AppContext, *, mounted: bool) -> str:
    """Readiness of the webhook endpoint: without a secret every delivery is refused 401
    and unsubscribes would arrive only by reconciliation, so that is "not ready"."""
    if not mounted:
        return "ok (disabled: webhook_enabled = false; unsubscribes come by reconciliation)"
    if not ctx.settings.webhook_secrets:
        return "no webhook secret configured: every delivery would be refused"
    return f"ok ({len(ctx.settings.webhook_secrets)} secret(s))"


class RequestLog:
    """ASGI middleware: one log line per request with the route template, status and
    duration. Never the raw path or the query string (they can carry the webhook secret
    or an address)."""

    def __init__(self, app: ASGIApp, routes: Callable[[], list[Any]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = self.route_of(scope)
            method = log.debug if route in QUIET_ROUTES and status < 500 else log.info
            method("http request", method=scope.get("method"), route=route, status=status,
                   duration_ms=round((time.monotonic() - started) * 1000, 1))

    def route_of(self, scope: Scope) -> str:
        # Starlette and FastAPI leave the matched route in the scope.
        matched = getattr(scope.get("route"), "path", None)
        if isinstance(matched, str):
            return matched
        partial = None
        for route in self.routes():
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return str(getattr(route, "path", "<route>"))
            if match == Match.PARTIAL and partial is None:
                partial = str(getattr(route, "path", "<route>"))
        return partial or "<unmatched>"


def _readiness_checks(ctx: AppContext, probe: SingleFlight, head: str | None,
                      up_since: datetime, max_sync_age: timedelta,
                      ) -> tuple[dict[str, str], DatabaseFacts | None]:
    """The database, schema and last-sync checks of /readyz, and the facts read."""
    facts: DatabaseFacts | None
    checks: dict[str, str] = {}
    try:
        facts = probe("readiness", lambda: _database_facts(ctx))
    except FutureTimeout:
        checks["database"] = f"no answer within {probe.timeout:g} s"
        facts = None
    except Exception as exc:  # any failure to read is "not ready"
        checks["database"] = f"unreachable ({type(exc).__name__})"
        facts = None
    if facts is not None:
        checks["database"] = "ok"
        checks["schema"] = ("ok" if facts.revision == head else
                            f"at {facts.revision}, head is {head}: run `syncd db upgrade`")
        now = utcnow()
        if now - up_since < max_sync_age:
            checks["last_sync"] = "ok (service younger than the maximum sync age)"
        elif facts.last_sync_at is None:
            checks["last_sync"] = "no successful sync yet"
        elif now - facts.last_sync_at > max_sync_age:
            checks["last_sync"] = f"last successful sync at {facts.last_sync_at.isoformat()}"
        else:
            checks["last_sync"] = "ok"
    return checks, facts


def _install_signups(app: FastAPI, ctx: AppContext) -> None:
    """Mount the sign-up pages and API when a double opt-in mode is configured."""
    from syncd.service.signup_api import api_app
    from syncd.service.signup_routes import signup_router
    from syncd.service.signup_shared import Signups

    signup_log = get_logger("syncd.service.signup")
    if ctx.settings.double_opt_in is None:
        signup_log.info("sign-up endpoints off: set smtp_host, mail_from and "
                        "public_base_url (syncd's double opt-in) or "
                        "sync_push_unconfirmed_as_pending (Mailchimp's)")
        return
    signups = Signups(ctx)
    app.include_router(signup_router(signups))
    app.mount("/api/v1", api_app(signups))
    signup_log.info("sign-up endpoints on", double_opt_in=ctx.settings.double_opt_in)


def create_app(ctx: AppContext, *, started_at: datetime | None = None,
               webhooks: bool = True, signups: bool = True,
               probe_timeout: float = PROBE_TIMEOUT_SECONDS) -> FastAPI:
    """The ASGI app. `started_at`: when the service started (readiness grace period)."""
    app = FastAPI(title="syncd", docs_url=None, redoc_url=None, openapi_url=None,
                  telemetry=NO_TELEMETRY)
    up_since = started_at or utcnow()
    head = head_revision()
    max_sync_age = timedelta(minutes=ctx.settings.readiness_max_sync_age_minutes)
    probe = SingleFlight(probe_timeout)
    app.state.probe = probe

    if webhooks:
        from syncd.service.webhook_endpoint import webhook_router

        app.include_router(webhook_router(ctx))
    webhook_state = _webhook_state(ctx, mounted=webhooks)
    if signups:
        _install_signups(app, ctx)

    from syncd.service.operator import dsar_router
    from syncd.service.status_page import status_router

    app.include_router(dsar_router(ctx))
    app.include_router(status_router(ctx))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Alive: the process answers. Says nothing about the database on purpose (a
        database outage must not make an orchestrator restart every replica)."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        checks, facts = _readiness_checks(ctx, probe, head, up_since, max_sync_age)
        checks["webhooks"] = webhook_state
        failing = sorted(name for name, state in checks.items() if not state.startswith("ok"))
        if failing:
            return JSONResponse({"status": "not ready", "failing": failing, "checks": checks},
                                status_code=503)
        body: dict[str, Any] = {"status": "ready", "checks": checks}
        if facts is not None and facts.held.unsubscribes:
            # Visible, but not "not ready": the webhooks must keep flowing meanwhile.
            body["attention"] = facts.held.detail()
        return JSONResponse(body)

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        try:
            probe("gauges", lambda: _refresh_gauges(ctx))
        except Exception as exc:  # serve the last values; the metrics still help
            log.warning("metrics: database gauges not refreshed", error=type(exc).__name__)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestLog, routes=lambda: list(app.router.routes))
    return app
