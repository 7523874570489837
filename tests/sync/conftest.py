"""Fixtures for the sync engine: a real Mailchimp emulator on loopback, settings that
point the real client at it, and a client per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.config import Settings
from syncd.context import AppContext
from syncd.esp.mailchimp import MailchimpClient, mailchimp_client
from syncd.sync.run import run_sync
from syncd.sync.sync_report import SyncReport
from tests.conftest import emulated_settings

# The emulator fixtures live in tests/conftest.py; the sync tests call them by this name.
sync_settings = emulated_settings


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
