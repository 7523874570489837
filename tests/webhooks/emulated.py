"""An app context whose Mailchimp client points at the emulator (tests/conftest.py holds
the emulator fixtures); imported by the webhook and reconcile conftests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from tests.conftest import emulated_settings, opened


@pytest.fixture
def emulated_context(database_url: str, emulator: MailchimpEmulator) -> Iterator[AppContext]:
    with opened(emulated_settings(database_url, emulator)) as ctx:
        yield ctx
