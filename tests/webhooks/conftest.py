"""Fixtures for the webhook tests: the router mounted in a minimal FastAPI app, served by
a real uvicorn on 127.0.0.1 (port 0) in a thread, and helpers to post and inspect."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import fastapi
import pytest
import requests
import uvicorn
from sqlalchemy import select

from syncd import logs
from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import WebhookEvent
from syncd.service.webhook_endpoint import webhook_router
from tests.conftest import TEST_WEBHOOK_SECRET, fixture_body

FORM = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "MailChimp.com"}


@dataclass
class Served:
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread

    def url(self, secret: str = TEST_WEBHOOK_SECRET) -> str:
        return f"{self.base_url}/webhooks/mailchimp/{secret}"

    def post(self, body: bytes, *, secret: str = TEST_WEBHOOK_SECRET,
             headers: dict[str, str] | None = None) -> requests.Response:
        return requests.post(self.url(secret), data=body, headers=headers or FORM, timeout=15)

    def deliver(self, name: str, **kwargs: Any) -> requests.Response:
        return self.post(fixture_body(name), **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_app(app: fastapi.FastAPI) -> Served:
    """A real uvicorn server on 127.0.0.1 with a free port, in a daemon thread."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False,
                            lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, daemon=True, name="uvicorn-test")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    return Served(f"http://127.0.0.1:{port}", server, thread)


def app_for(ctx: AppContext) -> fastapi.FastAPI:
    app = fastapi.FastAPI()
    app.include_router(webhook_router(ctx))
    return app


@pytest.fixture
def served_for() -> Iterator[Callable[[AppContext], Served]]:
    started: list[Served] = []

    def start(ctx: AppContext) -> Served:
        served = serve_app(app_for(ctx))
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture
def served(app_context: AppContext, served_for: Callable[[AppContext], Served]) -> Served:
    return served_for(app_context)


def inbox_rows(ctx: AppContext) -> list[WebhookEvent]:
    with transaction(ctx.sessions) as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


from tests.webhooks.emulated import emulated_context  # noqa: E402

__all__ = ["emulated_context"]


@contextmanager
def stored_log_lines() -> Iterator[list[dict[str, Any]]]:
    """The `webhook event stored` debug lines the block's deliveries wrote (JSON, one dict
    each: outcome, contact_id, ...), filled in when the block ends."""
    stream = io.StringIO()
    found: list[dict[str, Any]] = []
    logs.configure(level="debug", fmt="json", stream=stream)
    try:
        yield found
    finally:
        logs.configure(level="warning", fmt="json")
        found.extend(json.loads(line) for line in stream.getvalue().splitlines()
                     if "webhook event stored" in line)
