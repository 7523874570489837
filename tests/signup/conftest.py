"""Fixtures for sign-up tests: a real SMTP sink, settings for syncd's own double opt-in
pointed at it, and the app served by a real uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import requests

from syncd.config import Settings
from syncd.context import AppContext
from syncd.service.app import create_app
from syncd.service.smtp_sender import SmtpSender
from syncd.signup.outbox import DeliveryReport, deliver_due
from tests.conftest import make_settings
from tests.service.conftest import served
from tests.smtp_sink import SmtpSink

API_TOKEN = "test-signup-api-token-0123456789"
OLD_API_TOKEN = "rotated-signup-api-token-9876543210"
BASE = "https://news.example.org"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Generous: on a loaded 2-core machine a local send can take over a second; a 1 s limit
# made healthy sends time out (SMTPServerDisconnected) and be retried. The slow-server
# test sets its own short limit.
SMTP_TIMEOUT = 10.0


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


def signup_settings(database_url: str, sink: SmtpSink, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1", "smtp_port": sink.port, "smtp_starttls": False,
        "smtp_timeout_seconds": SMTP_TIMEOUT, "mail_from": "Nieuwsbrief <news@example.org>",
        "public_base_url": BASE, "signup_api_tokens": [API_TOKEN, OLD_API_TOKEN],
        "signup_lists": ["newsletter-nl"],
    }
    return make_settings(database_url, **(values | overrides))


@pytest.fixture
def signup_ctx(database_url: str, smtp: SmtpSink) -> Iterator[AppContext]:
    ctx = AppContext.open(signup_settings(database_url, smtp))
    ctx.sync_lists()
    yield ctx
    ctx.close()


@pytest.fixture
def site(signup_ctx: AppContext) -> Iterator[str]:
    with served(create_app(signup_ctx, webhooks=False)) as url:
        yield url


def deliver(ctx: AppContext, **kwargs: Any) -> DeliveryReport:
    return deliver_due(ctx, SmtpSender(ctx.settings), **kwargs)


def post_form(url: str, data: Any, **headers: str) -> requests.Response:
    return requests.post(url, data=data, headers={**FORM, **headers}, timeout=10,
                         allow_redirects=False)


def good_form(email: str = "ada@example.com", **extra: Any) -> dict[str, Any]:
    return {"email": email, "purposes": ["newsletter"], "text_version": "form-v3",
            "privacy_notice_version": "2026-01", "form_url": "https://example.org/join",
            **extra}


def local(link: str, site: str) -> str:
    """A link from a mail, pointed at the test server instead of the public address."""
    assert link.startswith(BASE), link
    return site + link[len(BASE):]


def signed_up(site: str, ctx: AppContext, sink: SmtpSink, email: str = "ada@example.com",
              **extra: Any) -> EmailMessage:
    """Sign up through the form, run the outbox, and return the confirmation mail."""
    before = len(sink.messages)
    answer = post_form(site + "/signup", good_form(email, **extra))
    assert answer.status_code == 200, answer.text
    assert deliver(ctx).sent == 1
    return sink.wait_for(before + 1)[-1]
