"""Fixtures for the service: the app served by a real uvicorn on loopback, a PostgreSQL
database that can be made unreachable and reachable again, and `syncd serve` processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from syncd.db import make_engine
from syncd.migrate import upgrade


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve an ASGI app with a real uvicorn in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class BlockablePostgres:
    """A database of its own on the shared server, so that blocking it (no new
    connections, existing ones terminated) touches no other test."""

    admin_url: str
    name: str
    url: str

    def _admin(self, sql: str) -> None:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(sql))
        engine.dispose()

    def block(self) -> None:
        self._admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
        self._admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()")

    def unblock(self) -> None:
        self._admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')


@pytest.fixture
def blockable_postgres(postgres_server_url: str) -> Iterator[BlockablePostgres]:
    name = f"syncd_block_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    db = BlockablePostgres(postgres_server_url, name, url)
    yield db
    db.unblock()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


REPO = Path(__file__).resolve().parents[2]


@dataclass
class ServeProcess:
    """A real `syncd serve` subprocess; stderr (the log) is collected as it comes."""

    proc: subprocess.Popen[bytes]
    port: int
    lines: list[str] = field(default_factory=list)
    signalled: bool = False
    _reader: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_reading(self) -> None:
        def read() -> None:
            assert self.proc.stderr is not None
            for raw in self.proc.stderr:
                self.lines.append(raw.decode("utf-8", "replace"))

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

    def log_text(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 20) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"syncd serve exited ({self.proc.returncode}):\n"
                                     + self.log_text()[-4000:])
            try:
                return requests.get(self.base_url + "/healthz", timeout=1).ok
            except requests.RequestException:
                return False

        wait_until(up, timeout, "syncd serve to answer /healthz", interval=0.1)

    def signal(self, sig: int) -> None:
        self.signalled = True
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 40) -> int:
        """SIGTERM (unless the test already signalled: a second one would force the exit)
        and wait; the exit code."""
        if self.proc.poll() is None and not self.signalled:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code


def syncd_env(settings_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env.update(settings_env)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def serve_process() -> Iterator[Callable[..., ServeProcess]]:
    """Start `syncd serve` subprocesses with SYNCD_* settings; all stopped at the end."""
    started: list[ServeProcess] = []

    def start(env: dict[str, str], *, port: int | None = None,
              options: bool = True) -> ServeProcess:
        """`options=False`: no --host/--port, the settings decide (SYNCD_HTTP_*)."""
        chosen = port or free_port()
        command = [sys.executable, "-m", "syncd", "serve"]
        if options:
            command += ["--host", "127.0.0.1", "--port", str(chosen)]
        proc = subprocess.Popen(
            command, cwd=REPO, env=syncd_env(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        server = ServeProcess(proc, chosen)
        server.start_reading()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=10)


def seed_confirmed(ctx: Any, count: int, *, prefix: str = "member") -> list[str]:
    """`count` contacts on newsletter-nl with a double opt-in newsletter consent (given,
    then confirmed), as the store and ledger write them, but in three bulk INSERTs: the
    service tests need thousands (more than one read chunk of the sync) in seconds."""
    import hashlib

    from sqlalchemy import insert, select

    from syncd.clock import utcnow
    from syncd.db import transaction
    from syncd.schema import Contact, InternalList, ListMembership
    from syncd.store import ledger as chain_ledger
    from tests.builders import at

    emails = [f"{prefix}{i:05d}@example.org" for i in range(count)]
    now = utcnow()
    with transaction(ctx.sessions) as session:
        list_id = session.scalars(
            select(InternalList.id).where(InternalList.name == "newsletter-nl")).one()
        session.execute(insert(Contact), [
            {"email_key": e, "email_display": e, "attributes": {}, "is_customer": False,
             "created_at": now, "updated_at": now, "revision": 1} for e in emails])
        ids = dict(session.execute(select(Contact.email_key, Contact.id).where(
            Contact.email_key.in_(emails))).all())
        chain_ledger.append(session, [  # the ledger's one write path: linked into its chain
            {"contact_id": ids[e], "purpose": "newsletter", "action": action,
             "occurred_at": at(0) + timedelta(hours=hours), "recorded_at": now,
             "source": "web_form", "email_at_time": e, "form_url": "https://example.org/signup",
             "text_version": "v3", "privacy_notice_version": "2026-01", "ip": "192.0.2.10",
             "dedupe_key": hashlib.sha256(f"{e}:{action}".encode()).hexdigest()}
            for e in emails for action, hours in (("given", 0), ("confirmed", 1))])
        session.execute(insert(ListMembership), [
            {"contact_id": ids[e], "list_id": list_id, "added_at": now, "source": "test"}
            for e in emails])
    return emails


def service_env(database_url: str, emulator_base_url: str, **settings: Any) -> dict[str, str]:
    """SYNCD_* variables for a `syncd serve` subprocess: the test lists, secrets and keys,
    the emulator as Mailchimp, JSON logs; `settings` override (name=value)."""
    import json

    from mailchimp_emulator import DEFAULT_API_KEY
    from tests.conftest import (
        TEST_AUDIENCE_ID,
        TEST_LISTS,
        TEST_OLD_WEBHOOK_SECRET,
        TEST_PSEUDONYM_KEY,
        TEST_WEBHOOK_SECRET,
    )

    values: dict[str, Any] = {
        "database_url": database_url,
        "pseudonym_key": TEST_PSEUDONYM_KEY,
        "webhook_secrets": f"{TEST_WEBHOOK_SECRET},{TEST_OLD_WEBHOOK_SECRET}",
        "lists": json.dumps({name: cfg.model_dump() for name, cfg in TEST_LISTS.items()}),
        "mailchimp_api_key": DEFAULT_API_KEY,
        "mailchimp_audience_id": TEST_AUDIENCE_ID,
        "mailchimp_base_url": emulator_base_url,
        "mailchimp_retry_max_wait_seconds": 0.05,
        "mailchimp_timeout_seconds": 5,
        "log_format": "json",
        "sync_interval_minutes": 600,
        "reconcile_interval_minutes": 600,
        "inbox_retry_interval_minutes": 600,
    }
    values.update(settings)
    return {f"SYNCD_{name.upper()}": str(value) for name, value in values.items()}


def log_records(lines: list[str]) -> list[dict[str, Any]]:
    """The JSON log lines of a subprocess (every line must be JSON: nothing else on stderr)."""
    import json

    return [json.loads(line) for line in lines if line.strip()]
