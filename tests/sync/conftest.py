"""Fixtures for the sync engine: a real Mailchimp emulator on loopback, settings that
point the real client at it, and a client per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from syncd.config import Settings
from syncd.context import AppContext
from syncd.esp.emulator import DEFAULT_API_KEY, MailchimpEmulator
from syncd.esp.mailchimp import MailchimpClient, mailchimp_client
from syncd.sync.run import SyncReport, run_sync
from tests.conftest import TEST_AUDIENCE_ID, make_settings


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[MailchimpEmulator]:
    with MailchimpEmulator(list_id=TEST_AUDIENCE_ID) as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server: MailchimpEmulator) -> Iterator[MailchimpEmulator]:
    """The session's emulator, emptied: no members, faults, hooks or stats."""
    emulator_server.reset()
    emulator_server.set_latency(0)
    emulator_server.configure(allow_api_resubscribe=False, required_merge_fields=(),
                              refused_addresses=())
    yield emulator_server
    emulator_server.clear_faults()


def sync_settings(database_url: str, emu: MailchimpEmulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "mailchimp_api_key": DEFAULT_API_KEY,
        "mailchimp_base_url": emu.base_url,
        # Fast retries in tests: full jitter below 20 ms.
        "mailchimp_retry_max_wait_seconds": 0.02,
        "mailchimp_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@pytest.fixture
def settings(database_url: str, emulator: MailchimpEmulator) -> Settings:
    return sync_settings(database_url, emulator)


@pytest.fixture
def esp(settings: Settings) -> Iterator[MailchimpClient]:
    client = mailchimp_client(settings)
    yield client
    client.close()


class Syncer:
    """Runs `run_sync` with the real client; keeps the last report."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def __call__(self, **kwargs: Any) -> SyncReport:
        return run_sync(self.ctx, **kwargs)


@pytest.fixture
def sync(app_context: AppContext) -> Syncer:
    return Syncer(app_context)
