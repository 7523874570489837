"""`POST /api/v1/signups`: the sign-up for apps, JSON in and out, with its OpenAPI
description at /api/v1/openapi.json.

Bearer tokens from the setting signup_api_tokens, compared in constant time with EVERY
configured token (rotation: old and new both work). An app signs people up from its own
server, so it may state the person's `ip` and `user_agent` (rule 4 evidence); otherwise
the request's are recorded. CORS only for the configured origins."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware

from syncd import metrics
from syncd.service.credentials import digests_of, secret_matches
from syncd.service.http_limits import BadBody, BodyTooLarge, read_body
from syncd.service.signup_shared import Signups
from syncd.service.web import NO_TELEMETRY, client_ip, media_type
from syncd.signup.form import SINGLE, BotTrap, FieldError, has_control, parse_signup
from syncd.signup.intake import CHANNEL_API, Evidence, record_signup

EVIDENCE_FIELDS = ("ip", "user_agent")
STRINGS = (*SINGLE, *EVIDENCE_FIELDS)


def _message_schema(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {
        "type": "object", "required": ["detail"],
        "properties": {"detail": {"type": "string"}}}}}}


def _request_schema(purposes: list[str]) -> dict[str, Any]:
    text = {"type": "string", "maxLength": 200}
    return {"type": "object", "additionalProperties": False,
            "required": ["email", "purposes", "text_version", "privacy_notice_version"],
            "properties": {
                "email": {"type": "string", "format": "email", "maxLength": 254},
                "first_name": text, "last_name": text,
                "purposes": {"type": "array", "maxItems": 20, "uniqueItems": True,
                             "items": {"type": "string", "enum": purposes},
                             "description": "one value per ticked box; empty: nothing is "
                                            "recorded"},
                "text_version": {**text, "minLength": 1},
                "privacy_notice_version": {**text, "minLength": 1},
                "form_url": {"type": "string", "maxLength": 2000, "format": "uri"},
                "language": {"type": "string", "enum": ["nl", "en"]},
                "prechecked": {"type": "boolean", "description": "true is refused (rule 2)"},
                "ip": {"type": "string", "maxLength": 64},
                "user_agent": {"type": "string", "maxLength": 1000}}}


ANSWER = {"type": "object", "required": ["status", "message"], "properties": {
    "status": {"type": "string", "enum": ["accepted", "nothing_recorded"]},
    "purposes": {"type": "array", "items": {"type": "string"}},
    "message": {"type": "string"}}}
PROBLEMS = {"type": "object", "required": ["detail"], "properties": {"detail": {
    "type": "array", "items": {"type": "object", "required": ["field", "message"],
                               "properties": {"field": {"type": "string"},
                                              "message": {"type": "string"}}}}}}


def _problems(errors: list[FieldError]) -> JSONResponse:
    metrics.SIGNUPS.labels(CHANNEL_API, "refused").inc()
    return JSONResponse({"detail": [{"field": e.field, "message": e.message} for e in errors]},
                        status_code=422)


def _fields(raw: Any) -> dict[str, list[str]] | list[FieldError]:
    if not isinstance(raw, dict):
        return [FieldError("body", "must be a JSON object")]
    fields: dict[str, list[str]] = {}
    errors = []
    for key, value in raw.items():
        if key == "purposes":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                errors.append(FieldError(key, "must be an array of strings"))
            else:
                fields[key] = value
        elif key.lower().replace("_", "").replace("-", "").startswith("prechecked"):
            fields[key] = [str(value).lower() if isinstance(value, bool | str) else "?"]
        elif isinstance(value, str):
            fields[key] = [value]
        elif value is not None:
            errors.append(FieldError(key, "must be a string"))
    return errors or fields


def api_app(s: Signups) -> FastAPI:
    settings = s.ctx.settings
    api = FastAPI(title="syncd sign-up API", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json", telemetry=NO_TELEMETRY)
    digests = digests_of(settings.signup_api_tokens)
    purposes = sorted(settings.purposes)
    limited = {"description": "rate limited; see Retry-After",
               "headers": {"Retry-After": {"schema": {"type": "integer"}}},
               "content": {"application/json": {"schema": {
                   "type": "object", "properties": {"detail": {"type": "string"}}}}}}

    @api.post("/signups", response_model=None, openapi_extra={
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": _request_schema(purposes)}}},
        "security": [{"bearer": []}]}, responses={
        202: {"description": "recorded; the confirmation follows by mail",
              "content": {"application/json": {"schema": ANSWER}}},
        200: {"description": "no purpose ticked: nothing recorded",
              "content": {"application/json": {"schema": ANSWER}}},
        400: _message_schema("the body is not JSON"),
        401: _message_schema("missing or wrong bearer token"),
        413: _message_schema("body too large"),
        415: _message_schema("not application/json"),
        422: {"description": "refused; each problem names its field; nothing recorded",
              "content": {"application/json": {"schema": PROBLEMS}}},
        429: limited})
    async def signups(request: Request) -> JSONResponse:  # noqa: PLR0911 - one answer per case
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not digests or not secret_matches(token.strip(),
                                                                           digests):
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        if media_type(request) != "application/json":
            return JSONResponse({"detail": "send application/json"}, status_code=415)
        try:
            body = await read_body(request, settings.signup_max_body_bytes)
            raw = json.loads(body)
        except BodyTooLarge:
            return JSONResponse({"detail": f"larger than {settings.signup_max_body_bytes} "
                                           "bytes"}, status_code=413,
                                headers={"Connection": "close"})
        except (BadBody, ValueError) as exc:
            return JSONResponse({"detail": f"not JSON: {type(exc).__name__}"}, status_code=400)
        fields = _fields(raw)
        if isinstance(fields, list):
            return _problems(fields)
        stated = {k: fields.pop(k)[-1] for k in EVIDENCE_FIELDS if k in fields}
        ip = stated.get("ip") or client_ip(request)
        wait = s.per_ip.hit(f"api:{ip}")
        if wait is not None:
            return _limited(wait)
        parsed = parse_signup(fields, settings, strict=True)
        bad = [FieldError(k, "contains a control character") for k, v in stated.items()
               if has_control(v)]
        if isinstance(parsed, list) or bad:
            return _problems((parsed if isinstance(parsed, list) else []) + bad)
        if isinstance(parsed, BotTrap):
            return _accepted(())
        lang = parsed.language or s.web.language(request)
        evidence = Evidence.of(s.evidence(request).at, ip,
                               stated.get("user_agent") or request.headers.get("user-agent"))
        if parsed.purposes:
            wait = s.address_limited(parsed)
            if wait is not None:
                return _limited(wait)
        await s.blocking(lambda: record_signup(s.ctx, parsed, evidence, channel=CHANNEL_API,
                                               language=lang))
        if not parsed.purposes:
            return JSONResponse({"status": "nothing_recorded", "purposes": [],
                                 "message": "no purpose ticked: nothing was recorded"})
        return _accepted(parsed.purposes)

    api.openapi_schema = None
    base_openapi = api.openapi

    def openapi() -> dict[str, Any]:
        schema = base_openapi()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}}
        return schema

    api.openapi = openapi  # type: ignore[method-assign]
    if settings.signup_cors_origins:
        api.add_middleware(CORSMiddleware, allow_origins=list(settings.signup_cors_origins),
                           allow_methods=["POST"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    return api


def _accepted(purposes: tuple[str, ...]) -> JSONResponse:
    # The same answer whether the address was known, new, or a bot's.
    return JSONResponse({"status": "accepted", "purposes": list(purposes),
                         "message": "recorded; the person confirms through the mail they "
                                    "get"}, status_code=202)


def _limited(wait: int) -> JSONResponse:
    metrics.SIGNUPS.labels(CHANNEL_API, "limited").inc()
    return JSONResponse({"detail": f"too many sign-ups; retry in {wait} s"}, status_code=429,
                        headers={"Retry-After": str(wait)})
