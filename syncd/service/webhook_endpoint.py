"""`POST /webhooks/mailchimp/{secret}`: Mailchimp audience webhooks, purged at once.

Audience webhooks are not signed; Mailchimp's advice is a secret in the URL
(docs/webhooks.md sets it up). It is compared in constant time with EVERY configured secret
(rotation: old and new both work while Mailchimp is being switched over). The path is
authenticate -> bound the body -> parse -> store + apply in the writer's next batch
(one transaction, syncd.webhooks.group_commit) -> answer.
Nothing answers 2xx before the event is committed. Every delivery is answered within
`webhook_deadline_seconds` (default 5 s, well inside the 10 s Mailchimp waits): the
body is read within the body timeout, the wait in the writer's queue and every lock wait
inside the transaction are bounded by what is left, and a purge that cannot commit in
time is rolled back and answered 503, so that Mailchimp retries (for 75 minutes; the
reconciliation pull covers longer outages). A client that goes away mid-body is an
info line, not an error.

The validator Mailchimp runs when a webhook is saved sends a GET (some say an empty
POST) and needs 200: both are answered. No log line of this module holds the secret,
the path or an address.
"""

from __future__ import annotations

import asyncio
import time

import anyio
import fastapi
from fastapi import Request, Response
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from syncd import logs
from syncd.context import AppContext
from syncd.keys import Keyring
from syncd.metrics import PURGE_LATENCY, WEBHOOK_EVENTS
from syncd.service.credentials import digests_of, secret_matches
from syncd.service.http_limits import BadBody, BodyTooLarge, read_body
from syncd.webhooks.group_commit import POSTGRES_WRITERS, Delivery, GroupWriter
from syncd.webhooks.inbox import InboxUnavailable
from syncd.webhooks.mailchimp_form import EventKind, MalformedBody, parse_body

PATH = "/webhooks/mailchimp/{secret}"
ALLOWED = "GET, HEAD, POST"
FORM_TYPE = "application/x-www-form-urlencoded"
PURGE_KINDS = (EventKind.UNSUBSCRIBE, EventKind.CLEANED)
# The writer's batch ends by itself at the deadline (its transaction is bounded); this
# margin only covers a writer stalled outside SQL (a slow disk).
ABANDON_GRACE_SECONDS = 0.5
RETRY_AFTER = "30"

log = logs.get_logger("syncd.webhooks")


def _content_type_ok(header: str | None) -> bool:
    if not header:
        return False
    media, *params = (part.strip().lower() for part in header.split(";"))
    if media != FORM_TYPE:
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8",
                                                                          "us-ascii"):
            return False
    return True


def _text(status: int, message: str, **headers: str) -> Response:
    return Response(content=message + "\n", status_code=status, media_type="text/plain",
                    headers=headers or None)


def _unavailable() -> Response:
    return _text(503, "temporarily unavailable, retry later", **{"Retry-After": RETRY_AFTER})


class _Receiver:
    """Everything one delivery needs, built once per router."""

    def __init__(self, ctx: AppContext) -> None:
        self.settings = ctx.settings
        self.digests = digests_of(ctx.settings.webhook_secrets)
        self._ctx = ctx
        self._keyring: Keyring | None = None
        # What arrived together is applied in one transaction, answered after its commit
        # (syncd.webhooks.group_commit); SQLite has one writer at a time.
        sqlite = ctx.engine.dialect.name == "sqlite"
        self.writer = GroupWriter(ctx.sessions, settings=ctx.settings,
                                  keyring=lambda: self.keyring,
                                  writers=1 if sqlite else POSTGRES_WRITERS)

    @property
    def keyring(self) -> Keyring:
        # From settings, or generated once and kept in the database (may raise if down).
        if self._keyring is None:
            self._keyring = self._ctx.keyring
        return self._keyring

    async def store(self, body: bytes, started: float, deadline: float) -> Response:
        """Parse, then store and apply in the writer's next batch, committed before
        `deadline` (time.monotonic()) or not at all."""
        try:
            parsed = parse_body(body)
        except MalformedBody as exc:
            WEBHOOK_EVENTS.labels(kind="invalid", outcome="rejected").inc()
            return _text(400, f"bad request: {exc}")
        try:
            receipt = await asyncio.wrap_future(self.writer.submit(
                Delivery(parsed, body.decode("utf-8"), deadline)))
        except InboxUnavailable as exc:
            WEBHOOK_EVENTS.labels(kind=str(parsed.kind), outcome="unavailable").inc()
            log.error("webhook refused: event store unavailable", kind=str(parsed.kind),
                      error=str(exc))
            return _unavailable()
        if parsed.kind in PURGE_KINDS and receipt.status == "applied":
            PURGE_LATENCY.observe(time.monotonic() - started)
        WEBHOOK_EVENTS.labels(kind=str(parsed.kind), outcome=receipt.status).inc()
        log.debug("webhook event stored", kind=str(parsed.kind), outcome=receipt.status,
                  event_id=receipt.event_id, contact_id=receipt.contact_id)
        return _text(200, receipt.status)


def webhook_router(ctx: AppContext) -> fastapi.APIRouter:
    """The Mailchimp webhook routes, to be mounted by the service app."""
    receiver = _Receiver(ctx)
    router = fastapi.APIRouter()
    limit = ctx.settings.webhook_max_body_bytes
    allowed = ctx.settings.webhook_deadline_seconds
    body_timeout = ctx.settings.http_body_timeout_seconds

    async def deliver(  # noqa: PLR0911 - one answer per kind of bad input
            secret: str, request: Request) -> Response:
        started = time.monotonic()
        deadline = started + allowed
        if not secret_matches(secret, receiver.digests):
            WEBHOOK_EVENTS.labels(kind="none", outcome="unauthorized").inc()
            return _text(401, "unauthorized")
        if request.method in ("GET", "HEAD"):
            return _text(200, "ok")  # Mailchimp's validator
        if request.method != "POST":
            return _text(405, "method not allowed", Allow=ALLOWED)
        try:
            with anyio.fail_after(min(body_timeout, allowed)):
                body = await read_body(request, limit)
        except BodyTooLarge:
            WEBHOOK_EVENTS.labels(kind="invalid", outcome="too_large").inc()
            return _text(413, f"body larger than {limit} bytes", Connection="close")
        except BadBody as exc:
            return _text(400, f"bad request: {exc}")
        except TimeoutError:
            WEBHOOK_EVENTS.labels(kind="invalid", outcome="body_timeout").inc()
            return _text(408, "request body not received in time", Connection="close")
        except ClientDisconnect:
            # Nobody is left to answer; Mailchimp retries what it did not see answered.
            WEBHOOK_EVENTS.labels(kind="invalid", outcome="client_gone").inc()
            log.info("webhook client went away before sending the whole body")
            return _text(400, "incomplete body")
        if not body.strip():
            return _text(200, "ok")  # an empty POST: the validator, by some accounts
        if not _content_type_ok(request.headers.get("content-type")):
            WEBHOOK_EVENTS.labels(kind="invalid", outcome="unsupported_media_type").inc()
            return _text(415, f"content type must be {FORM_TYPE}")
        # Waiting in the writer's queue counts against the deadline too; a batch already
        # being applied ends by its own deadline (a delivery given up on before its batch
        # starts is dropped unapplied).
        with anyio.move_on_after(deadline - time.monotonic() + ABANDON_GRACE_SECONDS):
            return await receiver.store(body, started, deadline)
        WEBHOOK_EVENTS.labels(kind="unknown", outcome="deadline").inc()
        log.warning("webhook refused: not stored within the deadline",
                    deadline_seconds=allowed)
        return _unavailable()

    # Plain Starlette routes: FastAPI's parameter resolution and dependency machinery
    # cost more per delivery than anything else of the HTTP path (the profile), and these
    # endpoints take nothing but the path's secret and the request. FastAPI leaves the
    # matched route out of the scope for such routes, so each endpoint puts its own in:
    # the request log names the route template, never the path (it holds the secret).
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    async def delivery(request: Request) -> Response:
        request.scope["route"] = delivery_route
        return await deliver(request.path_params["secret"], request)

    async def no_secret(request: Request) -> Response:
        request.scope["route"] = bare_routes[request.scope["path"].endswith("/")]
        WEBHOOK_EVENTS.labels(kind="none", outcome="unauthorized").inc()
        return _text(401, "unauthorized")

    delivery_route = Route(PATH, delivery, methods=methods, include_in_schema=False)
    bare_routes = [Route(bare, no_secret, methods=methods, include_in_schema=False)
                   for bare in ("/webhooks/mailchimp", "/webhooks/mailchimp/")]
    router.routes.extend([delivery_route, *bare_routes])
    return router
