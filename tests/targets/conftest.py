"""Two sync targets on one emulated Mailchimp account: the newsletter in the default
audience, offers in a second one (the emulator serves several audiences by list id)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.config import Settings
from syncd.config.targets import TargetSettings
from syncd.context import AppContext
from tests.conftest import TEST_AUDIENCE_ID, emulated_settings
from tests.sync.test_sync_cli import write_config

OFFERS_AUDIENCE = "0ffe7512ab"
NEWSLETTER = TargetSettings(name="newsletter", audience_id=TEST_AUDIENCE_ID,
                            purposes=("newsletter",))
OFFERS = TargetSettings(name="offers", audience_id=OFFERS_AUDIENCE, purposes=("offers",))


def two_target_settings(database_url: str, emu: MailchimpEmulator,
                        *targets: TargetSettings, **overrides: Any) -> Settings:
    return emulated_settings(database_url, emu, mailchimp_audience_id=None,
                             targets=list(targets or (NEWSLETTER, OFFERS)), **overrides)


@pytest.fixture
def two_audiences(emulator: MailchimpEmulator) -> MailchimpEmulator:
    emulator.add_audience(OFFERS_AUDIENCE, name="Offers")
    return emulator


@pytest.fixture
def targets_ctx(database_url: str, two_audiences: MailchimpEmulator) -> Iterator[AppContext]:
    ctx = AppContext.open(two_target_settings(database_url, two_audiences))
    ctx.sync_lists()
    yield ctx
    ctx.close()


def two_targets_config(path: Path, database_url: str, emu: MailchimpEmulator) -> Path:
    """A settings file with two [[targets]] (newsletter, offers: one purpose each, their
    own audiences) and no [mailchimp] audience_id."""
    write_config(path, database_url, emu)
    text = path.read_text().replace(f'audience_id = "{TEST_AUDIENCE_ID}"\n', "")
    for name, audience, purpose in (("newsletter", TEST_AUDIENCE_ID, "newsletter"),
                                    ("offers", OFFERS_AUDIENCE, "offers")):
        text += (f'\n[[targets]]\nname = "{name}"\naudience_id = "{audience}"\n'
                 f'purposes = ["{purpose}"]\n')
    path.write_text(text)
    return path
