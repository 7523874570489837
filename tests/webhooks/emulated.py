"""A Mailchimp emulator on loopback and settings that point the real client at it
(imported by the webhook and reconcile conftests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from syncd.config import Settings
from syncd.context import AppContext
from syncd.esp.emulator import DEFAULT_API_KEY, MailchimpEmulator
from tests.conftest import TEST_AUDIENCE_ID, make_settings


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[MailchimpEmulator]:
    with MailchimpEmulator(list_id=TEST_AUDIENCE_ID) as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server: MailchimpEmulator) -> Iterator[MailchimpEmulator]:
    emulator_server.reset()
    yield emulator_server
    emulator_server.clear_faults()


def emulated_settings(database_url: str, emu: MailchimpEmulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "mailchimp_api_key": DEFAULT_API_KEY, "mailchimp_base_url": emu.base_url,
        "mailchimp_retry_max_wait_seconds": 0.02, "mailchimp_timeout_seconds": 2.0,
    }
    return make_settings(database_url, **(values | overrides))


@pytest.fixture
def emulated_context(database_url: str, emulator: MailchimpEmulator) -> Iterator[AppContext]:
    ctx = AppContext.open(emulated_settings(database_url, emulator))
    ctx.sync_lists()
    yield ctx
    ctx.close()
