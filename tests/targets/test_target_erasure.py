"""`syncd contacts erase` with two targets: --at-esp deletes the member permanently in
every target's audience (not only one, and without asking for the single-audience
setting), and the guard without it asks every audience and names the target that still
holds the person. Both databases, the real client over HTTP, the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mailchimp_marketing.api_client import ApiClientError
from typer.testing import CliRunner

from mailchimp_emulator import MailchimpEmulator, subscriber_hash
from syncd.cli import _register_all, app
from syncd.context import AppContext
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID
from tests.esp.conftest import official_client
from tests.targets.conftest import OFFERS_AUDIENCE, two_targets_config

_register_all()
ADA = "ada@example.org"


@pytest.fixture
def config(tmp_path: Path, database_url: str, two_audiences: MailchimpEmulator,
           targets_ctx: AppContext) -> Path:
    """The settings file with two [[targets]] and no [mailchimp] audience_id."""
    path = two_targets_config(tmp_path / "syncd.toml", database_url, two_audiences)
    add_contact(targets_ctx, ADA, events=[*confirmed("newsletter"), *confirmed("offers")])
    return path


def erase(config: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--config", str(config), "contacts", "erase", ADA,
                                    "--yes", *args])


def test_erase_at_esp_deletes_the_member_permanently_in_every_targets_audience(
        config: Path, two_audiences: MailchimpEmulator) -> None:
    two_audiences.seed_member(ADA)
    two_audiences.seed_member(ADA, "unsubscribed", list_id=OFFERS_AUDIENCE)

    result = erase(config, "--at-esp")

    assert result.exit_code == 0, result.output
    assert "SYNCD_MAILCHIMP_AUDIENCE_ID" not in result.output
    assert two_audiences.member(ADA) is None
    assert two_audiences.member(ADA, list_id=OFFERS_AUDIENCE) is None
    assert "deleted permanently at Mailchimp (target offers)" in result.stdout


def test_an_erased_address_is_refused_afterwards_in_both_audiences(
        config: Path, two_audiences: MailchimpEmulator) -> None:
    two_audiences.seed_member(ADA)
    two_audiences.seed_member(ADA, list_id=OFFERS_AUDIENCE)
    erase(config, "--at-esp")
    client = official_client(two_audiences)
    for list_id in (TEST_AUDIENCE_ID, OFFERS_AUDIENCE):
        with pytest.raises(ApiClientError) as refused:
            client.lists.set_list_member(list_id, subscriber_hash(ADA), {
                "email_address": ADA, "status_if_new": "subscribed"})
        assert "Forgotten Email Not Subscribed" in refused.value.text


def test_erase_at_esp_is_safe_to_repeat_with_one_audience_already_done(
        config: Path, two_audiences: MailchimpEmulator) -> None:
    two_audiences.seed_member(ADA, list_id=OFFERS_AUDIENCE)  # never in the newsletter
    assert erase(config, "--at-esp").exit_code == 0
    result = erase(config, "--at-esp")
    assert result.exit_code == 0, result.output
    assert two_audiences.member(ADA, list_id=OFFERS_AUDIENCE) is None


def test_erasing_only_here_is_refused_naming_the_target_that_still_has_the_person(
        config: Path, two_audiences: MailchimpEmulator, targets_ctx: AppContext) -> None:
    two_audiences.seed_member(ADA, "unsubscribed", list_id=OFFERS_AUDIENCE)

    result = erase(config)

    assert result.exit_code == 4, result.output
    assert "(target offers: unsubscribed)" in result.output
    assert two_audiences.member(ADA, list_id=OFFERS_AUDIENCE) is not None
