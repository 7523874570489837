"""Shared fixtures: every database test runs on real SQLite AND real PostgreSQL.

PostgreSQL missing is a failure, never a skip: `make test` starts it when it can."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mailchimp_emulator import DEFAULT_API_KEY, MailchimpEmulator
from syncd.config import ListSettings, Settings, load_settings
from syncd.context import AppContext
from syncd.db import make_engine
from syncd.migrate import upgrade

POSTGRES_ADMIN_URL = os.environ.get(
    "SYNCD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TEST_WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdef"
TEST_OLD_WEBHOOK_SECRET = "rotated-old-secret-fedcba9876543210"
TEST_PSEUDONYM_KEY = "test-pseudonym-key-not-for-production"
TEST_AUDIENCE_ID = "f1243a3b12"
TEST_LISTS = {
    "newsletter-nl": ListSettings(purpose="newsletter", description="Dutch newsletter"),
    "newsletter-en": ListSettings(purpose="newsletter", description="English newsletter"),
    "offers": ListSettings(purpose="offers", description="Offers for customers"),
    "ebook-leads": ListSettings(purpose="ebook", description="E-book delivery",
                                marketing=False),
    "events": ListSettings(purpose="events", description="Event invitations"),
}
FIXTURES = Path(__file__).parent / "fixtures"


def fixture_body(name: str) -> bytes:
    """A webhook body byte for byte, as Mailchimp sends it."""
    return (FIXTURES / "webhooks" / name).read_bytes()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SYNCD_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("SYNCD_") and name != "SYNCD_TEST_POSTGRES_URL":
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # pragma: no cover - environment failure
        pytest.fail(f"PostgreSQL is required for the tests and is not reachable at "
                    f"{make_url(POSTGRES_ADMIN_URL).host}: {type(exc).__name__}. "
                    "Start it (see README) and run again.")
    finally:
        engine.dispose()
    return POSTGRES_ADMIN_URL


def _create_database(server_url: str, name: str) -> str:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _drop_database(server_url: str, name: str) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_database(postgres_server_url: str, worker_id: str) -> Iterator[str]:
    """One migrated database per test worker, emptied before each test."""
    name = f"syncd_test_{worker_id}_{uuid.uuid4().hex[:8]}"
    url = _create_database(postgres_server_url, name)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    _drop_database(postgres_server_url, name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "syncd.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def _empty_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        tables = [row[0] for row in conn.execute(text(
            "select tablename from pg_tables where schemaname = 'public' "
            "and tablename <> 'alembic_version'"))]
        conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                          + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: real SQLite (WAL) or real PostgreSQL."""
    if request.param == "sqlite":
        target = tmp_path / "syncd.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("postgres_database")
    _empty_postgres(url)
    return url


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "pseudonym_key": TEST_PSEUDONYM_KEY,
        "lists": TEST_LISTS,
        "webhook_secrets": [TEST_WEBHOOK_SECRET, TEST_OLD_WEBHOOK_SECRET],
        "mailchimp_audience_id": TEST_AUDIENCE_ID,
        "log_format": "json",
    }
    values.update(overrides)
    return load_settings(None, **values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@contextmanager
def opened(settings: Settings) -> Iterator[AppContext]:
    """An app context on `settings` with the configured lists in place, closed after."""
    ctx = AppContext.open(settings)
    try:
        ctx.sync_lists()
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def app_context(settings: Settings) -> Iterator[AppContext]:
    with opened(settings) as ctx:
        yield ctx


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[MailchimpEmulator]:
    """One Mailchimp emulator on loopback per test worker."""
    with MailchimpEmulator(list_id=TEST_AUDIENCE_ID) as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server: MailchimpEmulator) -> Iterator[MailchimpEmulator]:
    """The session's emulator, emptied: no members, faults, hooks or stats."""
    emulator_server.reset()
    emulator_server.set_latency(0)
    # Mailchimp GETs a webhook URL when it is saved (the emulator too, by default); most
    # tests register URLs nobody serves, the validation tests switch it back on.
    emulator_server.configure(allow_api_resubscribe=False, required_merge_fields=(),
                              refused_addresses=(), validate_webhook_urls=False)
    yield emulator_server
    emulator_server.clear_faults()


def emulated_settings(database_url: str, emu: MailchimpEmulator, **overrides: Any) -> Settings:
    """Settings that point the real Mailchimp client at the emulator."""
    values: dict[str, Any] = {
        "mailchimp_api_key": DEFAULT_API_KEY,
        "mailchimp_base_url": emu.base_url,
        # Fast retries in tests: full jitter below 20 ms.
        "mailchimp_retry_max_wait_seconds": 0.02,
        "mailchimp_timeout_seconds": 2.0,
    }
    return make_settings(database_url, **(values | overrides))
