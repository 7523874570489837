"""`GET /status` (server-rendered HTML) and `GET /status.json` on `syncd serve`: syncd's
health at a glance without Prometheus (syncd.service.status_data has what is shown).

Access: the operator token, or from loopback by default (syncd.service.operator). The page
carries no personal data: contacts by id, addresses in error texts replaced. It sends a
strict Content-Security-Policy (no script at all) and is never cached."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from syncd.context import AppContext
from syncd.service.operator import denied, is_local, token_ok
from syncd.service.status_data import collect

TEMPLATES = Path(__file__).with_name("templates")
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def when(value: str | None) -> str:
    """An ISO timestamp of the status document as "2026-12-01 20:33:46 UTC"."""
    if not value:
        return ""
    return f"{datetime.fromisoformat(value).astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def environment() -> Environment:
    """The status page's Jinja environment (autoescaped: stored text is never markup)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(
        default=True), trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = when
    return env


def render(doc: dict[str, Any]) -> str:
    return environment().get_template("status/status.html").render(doc=doc)


def allowed(ctx: AppContext, request: Request) -> bool:
    return token_ok(ctx, request) or (ctx.settings.status_allow_localhost and is_local(request))


def status_router(ctx: AppContext) -> APIRouter:
    router = APIRouter()
    template = environment().get_template("status/status.html")

    async def document(request: Request) -> dict[str, Any] | Response:
        if not allowed(ctx, request):
            return denied(ctx, local_allowed=ctx.settings.status_allow_localhost)
        found: dict[str, Any] = await run_in_threadpool(collect, ctx)
        return found

    @router.get("/status")
    async def status_page(request: Request) -> Response:
        doc = await document(request)
        if isinstance(doc, Response):
            return doc
        if "application/json" in request.headers.get("accept", "") and \
                "text/html" not in request.headers.get("accept", ""):
            return JSONResponse(doc, headers=HEADERS)
        return HTMLResponse(template.render(doc=doc), headers=HEADERS)

    @router.get("/status.json")
    async def status_json(request: Request) -> Response:
        doc = await document(request)
        if isinstance(doc, Response):
            return doc
        return JSONResponse(doc, headers=HEADERS)

    return router
