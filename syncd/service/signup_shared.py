"""What the sign-up pages and the sign-up API of one app share: the rate limits, the page
machinery, the worker threads for the blocking writes, the request's evidence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from fastapi import Request

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.service.web import Web, client_ip
from syncd.signup import tokens
from syncd.signup.form import SignupInput
from syncd.signup.intake import Evidence
from syncd.signup.limits import SlidingWindow
from syncd.signup.pages import purpose_label

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

