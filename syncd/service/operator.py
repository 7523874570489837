"""The operator's endpoints on `syncd serve`: who may call them, and the DSAR API.

Access: `Authorization: Bearer <operator_token>` (compared in constant time), or, for
/status only and by default, a request from the loopback address that did not come through
a proxy (a proxy adds Forwarded / X-Forwarded-For; behind one on the same host, set
status_allow_localhost = false and use the token).

DSAR API (Art. 15 and 20): POST /api/v1/subjects/export and /api/v1/subjects/proof with
`{"email": "..."}` in a small JSON body — never in the URL, which proxies log. Off (404)
unless an operator token is set."""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from syncd.context import AppContext
from syncd.errors import InputError
from syncd.logs import get_logger

log = get_logger("syncd.service.operator")

MAX_API_BODY_BYTES = 4096
_FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


def token_ok(ctx: AppContext, request: Request) -> bool:
    """A bearer token equal to the configured operator token (constant time)."""
    configured = ctx.settings.operator_token
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if configured is None or scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"),
                               configured.get_secret_value().encode("utf-8"))


def is_local(request: Request) -> bool:
    """From the loopback address itself, not relayed by a proxy."""
    if any(name in request.headers for name in _FORWARDED):
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def denied(ctx: AppContext, *, local_allowed: bool) -> JSONResponse:
    hint = ("send Authorization: Bearer <operator token>" if ctx.settings.operator_token
            else "set an operator token (SYNCD_OPERATOR_TOKEN)"
            + (" or ask from this host" if local_allowed else ""))
    return JSONResponse({"error": f"not allowed: {hint}"}, status_code=401,
                        headers={"WWW-Authenticate": 'Bearer realm="syncd"'})


async def _email_from(request: Request) -> str:
    """The address from a bounded JSON body; InputError names what is wrong."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_API_BODY_BYTES):
        raise InputError(f"the body must be at most {MAX_API_BODY_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_API_BODY_BYTES:
            raise InputError(f"the body must be at most {MAX_API_BODY_BYTES} bytes")
    try:
        data: Any = json.loads(body or b"null")
    except ValueError:
        raise InputError('the body must be JSON: {"email": "..."}') from None
    if not isinstance(data, dict) or not isinstance(data.get("email"), str):
        raise InputError('the body must be a JSON object with a string "email"')
    return str(data["email"])


def dsar_router(ctx: AppContext) -> APIRouter:
    router = APIRouter()

    async def answer(request: Request, what: str) -> JSONResponse:
        if ctx.settings.operator_token is None:
            return JSONResponse({"error": "the DSAR API is off: set an operator token"},
                                status_code=404)
        if not token_ok(ctx, request):
            return denied(ctx, local_allowed=False)
        try:
            email = await _email_from(request)
            if what == "export":
                from syncd.crm.subject import export_for

                doc = await run_in_threadpool(export_for, ctx, email)
            else:
                from syncd.crm.proof import proof_for

                doc = await run_in_threadpool(proof_for, ctx, email)
        except InputError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        log.info("dsar answered", kind=what, found=doc is not None)
        if doc is None:
            return JSONResponse({"error": "syncd holds no such person"}, status_code=404)
        # Personal data: no cache may keep it.
        return JSONResponse(doc, headers={"Cache-Control": "no-store"})

    @router.post("/api/v1/subjects/export")
    async def subject_export(request: Request) -> JSONResponse:
        """Everything syncd holds about the person (docs/subject-data.md)."""
        return await answer(request, "export")

    @router.post("/api/v1/subjects/proof")
    async def subject_proof(request: Request) -> JSONResponse:
        """Proof of the person's consent (docs/subject-data.md)."""
        return await answer(request, "proof")

    return router
