"""What every page and form route needs: form decoding, the client's address, language
negotiation, rate-limit answers, and HTML answers with the headers that keep a token in
a URL from leaking (no referrer, no caching, no framing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.telemetry import TelemetryConfig

from syncd.config import Settings
from syncd.service.http_limits import BadBody
from syncd.signup.pages import Pages, negotiate

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 100
SECURITY_HEADERS = {
    # Only syncd's own stylesheet; forms post only to syncd; never in a frame.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

# FastAPI's own OpenTelemetry, off for every app of the service: once any provider is
# configured in the process (opentelemetry-instrument, FASTAPI_OTEL_AUTO_CONFIGURE) it
# records a span per request whose url.path holds what the path carries: the webhook
# secret, a confirmation token (I9). It also looked for a provider on every request.
# syncd's metrics are Prometheus's.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False,
                                 "auto_configure": False}


def media_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower()


def decode_form(body: bytes) -> dict[str, list[str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("the form is not UTF-8 (use <form accept-charset=\"utf-8\">)") from None
    try:
        return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise BadBody(f"more than {MAX_FIELDS} form fields") from None


def client_ip(request: Request) -> str | None:
    # uvicorn puts the address a trusted proxy forwarded (--forwarded-allow-ips) here.
    return request.client.host if request.client else None


class Web:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pages = Pages.for_settings(settings)

    def language(self, request: Request, fields: Mapping[str, list[str]] | None = None) -> str:
        chosen = (fields or {}).get("language") or []
        if chosen and chosen[-1] in ("nl", "en"):
            return chosen[-1]
        return negotiate(request.headers.get("accept-language"),
                         self.settings.pages_default_language)

    def page(self, name: str, lang: str, status: int = 200,
             headers: Mapping[str, str] | None = None, **values: Any) -> HTMLResponse:
        html = self.pages.render(name, lang, **values)
        return HTMLResponse(html, status_code=status,
                            headers={**SECURITY_HEADERS, "Content-Language": lang,
                                     "Vary": "Accept-Language", **(headers or {})})

    def problem(self, lang: str, status: int, title: str, message: str = "",
                errors: list[Any] | None = None, **headers: str) -> HTMLResponse:
        return self.page("problem.html", lang, status, headers, title=title, message=message,
                         errors=errors or [])

    def too_many(self, lang: str, retry_after: int) -> HTMLResponse:
        title = "Even geduld" if lang == "nl" else "Please wait"
        message = (f"Te veel verzoeken. Probeer het over {retry_after} seconden opnieuw."
                   if lang == "nl" else
                   f"Too many requests. Try again in {retry_after} seconds.")
        return self.page("problem.html", lang, 429, {"Retry-After": str(retry_after)},
                         title=title, message=message, errors=[])

    def stylesheet(self) -> Response:
        loader = self.pages.env.loader
        assert loader is not None
        css = loader.get_source(self.pages.env, "syncd.css")[0]  # served as is
        return Response(css, media_type="text/css",
                        headers={"Cache-Control": "public, max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})
