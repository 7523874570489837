"""Fixtures for the Mailchimp emulator tests: a fresh emulator per test, the REAL
official client and a plain requests session pointed at it, and a local webhook receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import mailchimp_marketing as mc
import pytest
import requests

from mailchimp_emulator import MailchimpEmulator, subscriber_hash


@pytest.fixture
def emu() -> Iterator[MailchimpEmulator]:
    with MailchimpEmulator() as emulator:
        yield emulator


def official_client(emu: MailchimpEmulator) -> Any:
    """The official client, as syncd uses it, pointed at the emulator."""
    c = mc.Client()
    c.set_config({"api_key": emu.api_key, "server": "us1"})
    c.api_client.host = emu.base_url
    return c


@pytest.fixture
def client(emu: MailchimpEmulator) -> Any:
    return official_client(emu)


@pytest.fixture
def http(emu: MailchimpEmulator) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = ("anyone", emu.api_key)
        yield session


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A tiny webhook endpoint on 127.0.0.1 that records what Mailchimp would POST."""

    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 200
    get_status: int = 200  # answer to Mailchimp's validator GET
    arrived: threading.Event = field(default_factory=threading.Event)

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[Received]:
        for _ in range(int(timeout / 0.01)):
            if len(self.received) >= count:
                break
            self.arrived.wait(0.01)
        return self.received


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append(Received("POST", self.path, dict(self.headers), body))
            state.arrived.set()
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            state.received.append(Received("GET", self.path, dict(self.headers), b""))
            self.send_response(state.get_status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/mailchimp?secret=s3"
    yield state
    server.shutdown()
    server.server_close()


def member_url(emu: MailchimpEmulator, email: str) -> str:
    return f"{emu.base_url}/lists/{emu.list_id}/members/{subscriber_hash(email)}"
