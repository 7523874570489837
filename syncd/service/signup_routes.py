"""The sign-up pages on `syncd serve`: the form (GET/POST /signup), the confirmation link
(GET shows a button, only its POST confirms), and the preference page.

Every answer to a sign-up is the same whether the address was known or not; a bot that
fills in the honeypot gets the success page and nothing is recorded; limits answer 429
with Retry-After. No log line holds an address or a token (I9): routes are logged by
their template (/confirm/{token})."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from syncd import metrics
from syncd.addresses import parse_address
from syncd.clock import utcnow
from syncd.errors import InputError
from syncd.service.http_limits import BadBody, BodyTooLarge, read_body
from syncd.service.signup_shared import Signups
from syncd.service.web import FORM_TYPE, client_ip, decode_form, media_type
from syncd.signup import confirm, preferences
from syncd.signup.form import BotTrap, FieldError, offered_purposes, parse_signup
from syncd.signup.intake import CHANNEL_FORM, record_signup
from syncd.signup.pages import purpose_label


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


async def limited_form(s: Signups, request: Request, *, channel: str | None = None,
                       ) -> tuple[str, dict[str, list[str]]] | Response:
    """The preamble of every form POST: the per-IP limit (counted for `channel`, if
    given), then the decoded form and the page's language; or the answer that refuses."""
    lang = s.web.language(request)
    wait = s.per_ip.hit(client_ip(request) or "-")
    if wait is not None:
        if channel is not None:
            metrics.SIGNUPS.labels(channel, "limited").inc()
        return s.web.too_many(lang, wait)
    fields = await form_fields(s, request)
    if isinstance(fields, Response):
        return fields
    return s.web.language(request, fields), fields


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
    async def signup(request: Request) -> Response:
        form = await limited_form(s, request, channel=CHANNEL_FORM)
        if isinstance(form, Response):
            return form
        lang, fields = form
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
        form = await limited_form(s, request)
        if isinstance(form, Response):
            return form
        lang, fields = form
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
        form = await limited_form(s, request)
        if isinstance(form, Response):
            return form
        lang, fields = form
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
