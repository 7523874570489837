"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, and can be
made slow, refusing (5xx), temporarily failing (4xx) or stopped (down)."""

from __future__ import annotations

import asyncio
import re
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.service.conftest import free_port, wait_until

LINK = re.compile(r"https?://[^\s\"<>]+/(confirm|preferences)/[A-Za-z0-9_.\-]+")


class _Handler:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.mode = "accept"  # accept | refuse | tempfail
        self.delay = 0.0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if self.delay:  # slow before DATA: a client that gives up leaves no mail behind
            await asyncio.sleep(self.delay)
        if self.mode == "refuse":
            return "550 5.1.1 mailbox unavailable"
        if self.mode == "tempfail":
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 OK"


class SmtpSink:
    def __init__(self) -> None:
        self.handler = _Handler()
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    def set(self, mode: str = "accept", delay: float = 0.0) -> None:
        self.handler.mode, self.handler.delay = mode, delay

    def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        wait_until(lambda: len(self.messages) >= count, timeout, f"{count} mail(s)")
        return self.messages


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def link_in(message: EmailMessage, kind: str) -> str:
    for found in LINK.finditer(text_of(message)):
        if found.group(1) == kind:
            return found.group(0)
    raise AssertionError(f"no {kind} link in the mail")
