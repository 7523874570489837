"""A local SMTP server that keeps every mail it receives (aiosmtpd, on 127.0.0.1 only):
the demo's stand-in for a real mail server, and the tests' one. It can be made slow
(before DATA, so a client that gives up leaves no mail), refusing (5xx) or temporarily
failing (4xx)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class _Handler:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.mode = "accept"  # accept | refuse | tempfail
        self.delay = 0.0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "refuse":
            return "550 5.1.1 mailbox unavailable"
        if self.mode == "tempfail":
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        if isinstance(message, EmailMessage):
            with self.lock:
                self.messages.append(message)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MailSink:
    def __init__(self, port: int | None = None) -> None:
        self.handler = _Handler()
        self.port = port or _free_port()
        self.controller: Controller | None = None

    def start(self) -> MailSink:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

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
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {count} mail(s)")
            time.sleep(0.02)
        return self.messages
