"""The whole sign-up as a person does it, in a real headless Chromium: the form (by its
labels, with the keyboard), the mail the SMTP sink received, the link that does not
confirm, the button that does, the sync that pushes the member `subscribed` with the
opt-in proof, then the preference page withdrawal that leaves them `unsubscribed`."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
from sqlalchemy import select

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.schema import ConsentEvent
from syncd.service.app import create_app
from syncd.sync.run import run_sync
from tests.conftest import emulated_settings
from tests.service.conftest import free_port, wait_until
from tests.signup.conftest import deliver
from tests.smtp_sink import SmtpSink, link_in


@contextlib.contextmanager
def _serve_at(app: Any, port: int) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "uvicorn to start")
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _actions(ctx: AppContext) -> list[str]:
    with ctx.sessions() as session:
        return list(session.scalars(select(ConsentEvent.action).order_by(ConsentEvent.id)))


def test_a_person_signs_up_confirms_by_button_and_withdraws_on_the_preference_page(
        page: Any, database_url: str, emulator: MailchimpEmulator) -> None:
    smtp = SmtpSink()
    smtp.start()
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    ctx = AppContext.open(emulated_settings(
        database_url, emulator, smtp_host="127.0.0.1", smtp_port=smtp.port,
        smtp_starttls=False, mail_from="news@example.org", public_base_url=site,
        signup_lists=["newsletter-nl"], sync_max_unsubscribe_share=1.0))
    ctx.sync_lists()
    try:
        with _serve_at(create_app(ctx, webhooks=False), port):
            page.goto(site + "/signup")
            page.get_by_label("Email address").fill("ada@example.com")
            page.get_by_label("First name (optional)").fill("Ada")
            page.get_by_label("Newsletter").focus()
            page.keyboard.press("Space")  # a keyboard alone can tick the box
            page.get_by_label("First name (optional)").press("Enter")
            page.get_by_text("Almost done: check your mailbox").wait_for()

            assert deliver(ctx).sent == 1
            mail = smtp.wait_for(1)[0]
            page.goto(link_in(mail, "confirm"))
            button = page.get_by_role("button", name="Yes, I confirm my sign-up")
            button.wait_for()
            assert _actions(ctx) == ["given"]  # opening the link confirmed nothing

            button.click()
            page.get_by_role("heading", name="You are subscribed").wait_for()
            run_sync(ctx)
            member = emulator.member("ada@example.com")
            assert member is not None
            assert member["status"] == "subscribed"
            assert member["ip_opt"] == "127.0.0.1"
            assert member["timestamp_opt"]

            page.get_by_role("link", name="your preference page").click()
            newsletter = page.get_by_label("Newsletter")
            assert newsletter.is_checked()
            newsletter.uncheck()
            page.get_by_role("button", name="Save").click()
            page.get_by_text("Unsubscribed from: Newsletter.").wait_for()
        run_sync(ctx)
        member = emulator.member("ada@example.com")
        assert member is not None
        assert member["status"] == "unsubscribed"
        assert _actions(ctx) == ["given", "confirmed", "withdrawn"]
    finally:
        ctx.close()
        smtp.stop()
