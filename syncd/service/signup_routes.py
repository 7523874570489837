"""The sign-up pages on `syncd serve`: the form (GET/POST /signup), the confirmation link
(GET shows a button, only its POST confirms), and the preference page.

Every answer to a sign-up is the same whether the address was known or not; a bot that
fills in the honeypot gets the success page and nothing is recorded; limits answer 429
with Retry-After. No log line holds an address or a token (I9): routes are logged by
their template (/confirm/{token})."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from syncd import metrics
from syncd.addresses import parse_address
from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.errors import InputError
from syncd.service.pages import purpose_label
from syncd.service.web import (
    FORM_TYPE,
    BadBody,
    BodyTooLarge,
    Web,
    client_ip,
    decode_form,
    media_type,
    read_body,
)
from syncd.signup import confirm, preferences, tokens
from syncd.signup.form import BotTrap, FieldError, SignupInput, offered_purposes, parse_signup
from syncd.signup.intake import CHANNEL_FORM, Evidence, record_signup
from syncd.signup.limits import SlidingWindow

T = TypeVar("T")
HOUR = 3600.0


class Signups:
    """State shared by the sign-up routes of one app: limits and the page machinery."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        s = ctx.settings
        self.web = Web(s)
        self.per_ip = SlidingWindow(s.signup_rate_per_ip_per_hour, HOUR)
        self.per_address = SlidingWindow(s.signup_rate_per_address_per_hour, HOUR)
        sqlite = ctx.engine.dialect.name == "sqlite"
        # SQLite has one writer: more threads would only wait in its busy handler.
        self.limiter = anyio.CapacityLimiter(1 if sqlite else 8)

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    def evidence(self, request: Request) -> Evidence:
        return Evidence.of(utcnow(), client_ip(request), request.headers.get("user-agent"))

    def address_limited(self, signup: SignupInput) -> int | None:
        return self.per_address.hit(self.ctx.keyring.address_hmac(signup.address.key))

    def labels(self, purposes: tuple[str, ...] | list[str], lang: str) -> list[str]:
        return [purpose_label(self.ctx.settings, p, lang) for p in purposes]

    def preference_url(self, contact_id: int, email_key: str) -> str:
        token = tokens.preference_token(self.ctx.keyring, contact_id, email_key, utcnow())
        return f"{self.ctx.settings.public_base_url or ''}/preferences/{token}"


async def form_fields(s: Signups, request: Request) -> dict[str, list[str]] | Response:
    """The decoded form, or the answer that refuses it (413, 415, 400)."""
    lang = s.web.language(request)
    if media_type(request) != FORM_TYPE:
        return s.web.problem(lang, 415, "Unsupported Media Type",
                             f"send the form as {FORM_TYPE}")
    try:
        return decode_form(await read_body(request, s.ctx.settings.signup_max_body_bytes))
    except BodyTooLarge:
        return s.web.problem(lang, 413, "Payload Too Large",
                             f"larger than {s.ctx.settings.signup_max_body_bytes} bytes",
                             Connection="close")
    except BadBody as exc:
        return s.web.problem(lang, 400, "Bad Request", str(exc))


def _refused(s: Signups, lang: str, errors: list[FieldError]) -> Response:
    metrics.SIGNUPS.labels(CHANNEL_FORM, "refused").inc()
    title = "Niet aangemeld" if lang == "nl" else "Not signed up"
    return s.web.problem(lang, 422, title, errors=errors)


def signup_router(s: Signups) -> APIRouter:  # noqa: PLR0915 - one route after the other
    router = APIRouter(include_in_schema=False)
    settings = s.ctx.settings

    @router.get("/assets/syncd.css")
    def stylesheet() -> Response:
        return s.web.stylesheet()

    @router.get("/signup")
    def signup_form(request: Request) -> Response:
        lang = s.web.language(request)
        purposes = [{"name": p, "label": purpose_label(settings, p, lang)}
                    for p in offered_purposes(settings)]
        return s.web.page("signup_form.html", lang, purposes=purposes,
                          honeypot=settings.signup_honeypot_field,
                          text_version=settings.signup_form_text_version,
                          privacy_notice_version=settings.signup_privacy_notice_version)

    @router.post("/signup")
    async def signup(request: Request) -> Response:  # noqa: PLR0911 - one answer per case
        lang = s.web.language(request)
        wait = s.per_ip.hit(client_ip(request) or "-")
        if wait is not None:
            metrics.SIGNUPS.labels(CHANNEL_FORM, "limited").inc()
            return s.web.too_many(lang, wait)
        fields = await form_fields(s, request)
        if isinstance(fields, Response):
            return fields
        lang = s.web.language(request, fields)
        parsed = parse_signup(fields, settings)
        if isinstance(parsed, BotTrap):
            metrics.SIGNUPS.labels(CHANNEL_FORM, "bot_trap").inc()
            return s.web.page("signup_done.html", lang, nothing=False)
        if isinstance(parsed, list):
            return _refused(s, lang, parsed)
        if not parsed.purposes:
            await s.blocking(lambda: record_signup(s.ctx, parsed, s.evidence(request),
                                                   channel=CHANNEL_FORM, language=lang))
            return s.web.page("signup_done.html", lang, nothing=True)
        wait = s.address_limited(parsed)
        if wait is not None:
            metrics.SIGNUPS.labels(CHANNEL_FORM, "limited").inc()
            return s.web.too_many(lang, wait)
        await s.blocking(lambda: record_signup(s.ctx, parsed, s.evidence(request),
                                               channel=CHANNEL_FORM, language=lang))
        return s.web.page("signup_done.html", lang, nothing=False)

    def _invalid(lang: str, state: str) -> Response:
        status = 404 if state == confirm.UNKNOWN else 410
        return s.web.page("link_invalid.html", lang, status, reason=state)

    @router.get("/confirm/{token}")
    async def confirm_page(token: str, request: Request) -> Response:
        """Shows the button; never confirms (mail scanners fetch every link)."""
        lang = s.web.language(request)
        state = await s.blocking(confirm.inspect_token, s.ctx, token, utcnow())
        if state.state != confirm.VALID:
            return _invalid(lang, state.state)
        return s.web.page("confirm.html", lang, purposes=s.labels(state.purposes, lang))

    @router.post("/confirm/{token}")
    async def confirm_post(token: str, request: Request) -> Response:
        lang = s.web.language(request)
        wait = s.per_ip.hit(client_ip(request) or "-")
        if wait is not None:
            return s.web.too_many(lang, wait)
        state = await s.blocking(confirm.confirm, s.ctx, token, s.evidence(request))
        if state.state != confirm.VALID or state.contact_id is None:
            return _invalid(lang, state.state)
        assert state.email_key is not None
        return s.web.page("confirmed.html", lang, purposes=s.labels(state.purposes, lang),
                          preferences_url=s.preference_url(state.contact_id, state.email_key))

    @router.get("/preferences")
    def preferences_request(request: Request) -> Response:
        return s.web.page("preferences_request.html", s.web.language(request), sent=False)

    @router.post("/preferences")
    async def preferences_link(request: Request) -> Response:
        lang = s.web.language(request)
        wait = s.per_ip.hit(client_ip(request) or "-")
        if wait is not None:
            return s.web.too_many(lang, wait)
        fields = await form_fields(s, request)
        if isinstance(fields, Response):
            return fields
        lang = s.web.language(request, fields)
        try:
            address = parse_address((fields.get("email") or [""])[-1])
        except InputError as exc:
            return _refused(s, lang, [FieldError("email", str(exc))])
        wait = s.per_address.hit(s.ctx.keyring.address_hmac(address.key))
        if wait is not None:
            return s.web.too_many(lang, wait)
        await s.blocking(lambda: preferences.request_link(s.ctx, address, language=lang,
                                                          now=utcnow()))
        return s.web.page("preferences_request.html", lang, sent=True)

    async def _page(token: str, saved: preferences.Saved | None, lang: str) -> Response:
        contact_id = await s.blocking(preferences.contact_for_link, s.ctx, token, utcnow())
        if contact_id is None:
            return s.web.page("link_invalid.html", lang, 404, reason="unknown")
        found = await s.blocking(preferences.states, s.ctx, contact_id, lang, utcnow())
        states = [{"purpose": x.purpose, "label": x.label, "active": x.active,
                   "state_text": x.state_text_in(lang)} for x in found]
        return s.web.page("preferences.html", lang, states=states, saved=saved is not None,
                          withdrawn=s.labels(saved.withdrawn, lang) if saved else [],
                          requested=s.labels(saved.requested, lang) if saved else [])

    @router.get("/preferences/{token}")
    async def preferences_page(token: str, request: Request) -> Response:
        return await _page(token, None, s.web.language(request))

    @router.post("/preferences/{token}")
    async def preferences_save(token: str, request: Request) -> Response:
        lang = s.web.language(request)
        wait = s.per_ip.hit(client_ip(request) or "-")
        if wait is not None:
            return s.web.too_many(lang, wait)
        fields = await form_fields(s, request)
        if isinstance(fields, Response):
            return fields
        lang = s.web.language(request, fields)
        contact_id = await s.blocking(preferences.contact_for_link, s.ctx, token, utcnow())
        if contact_id is None:
            return s.web.page("link_invalid.html", lang, 404, reason="unknown")
        wanted = {p.strip() for p in fields.get("purposes", [])}
        unknown = sorted(wanted - settings.purposes)
        if unknown:
            return _refused(s, lang, [FieldError("purposes", "unknown purpose "
                                                 + ", ".join(repr(p[:64]) for p in unknown))])
        saved = await s.blocking(lambda: preferences.save(
            s.ctx, contact_id, wanted, s.evidence(request), language=lang))
        return await _page(token, saved, lang)

    return router


def install(app: Any, ctx: AppContext) -> None:
    """Mount the sign-up pages and API when a double opt-in mode is configured."""
    from syncd.logs import get_logger
    from syncd.service.signup_api import api_app

    log = get_logger("syncd.service.signup")
    if ctx.settings.double_opt_in is None:
        log.info("sign-up endpoints off: set smtp_host, mail_from and public_base_url "
                 "(syncd's double opt-in) or sync_push_unconfirmed_as_pending (Mailchimp's)")
        return
    signups = Signups(ctx)
    app.include_router(signup_router(signups))
    app.mount("/api/v1", api_app(signups))
    log.info("sign-up endpoints on", double_opt_in=ctx.settings.double_opt_in)
