"""`syncd sync` with two targets as the operator runs it: every target in turn by
default, `--target` picks one, a name no target has is a clear configuration error, and
the exit code is the worst of the targets'."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mailchimp_emulator import MailchimpEmulator
from syncd.cli import _register_all, app
from syncd.context import AppContext
from syncd.runner_lock import single_runner
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID
from tests.targets.conftest import OFFERS_AUDIENCE, two_targets_config

_register_all()
ADA, BOB = "ada@example.org", "bob@example.org"


@pytest.fixture
def config(tmp_path: Path, database_url: str, two_audiences: MailchimpEmulator,
           targets_ctx: AppContext) -> Path:
    path = two_targets_config(tmp_path / "syncd.toml", database_url, two_audiences)
    add_contact(targets_ctx, ADA, events=confirmed("newsletter"))
    add_contact(targets_ctx, BOB, events=confirmed("offers"))
    return path


def invoke(config: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--config", str(config), "sync", *args])


def test_sync_without_target_syncs_every_target_in_turn(
        config: Path, two_audiences: MailchimpEmulator) -> None:
    result = invoke(config)

    assert result.exit_code == 0, result.output
    assert "target newsletter" in result.stdout
    assert "target offers" in result.stdout
    assert two_audiences.member(ADA) is not None
    assert two_audiences.member(BOB, list_id=OFFERS_AUDIENCE) is not None


def test_sync_target_syncs_only_the_target_named(
        config: Path, two_audiences: MailchimpEmulator) -> None:
    result = invoke(config, "--target", "offers", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["target"] == "offers"
    assert two_audiences.member(BOB, list_id=OFFERS_AUDIENCE) is not None
    assert two_audiences.member(ADA) is None


def test_sync_target_with_a_name_no_target_has_is_a_configuration_error(
        config: Path) -> None:
    result = invoke(config, "--target", "promo")

    assert result.exit_code == 2
    assert "no target is called 'promo'; configured: newsletter, offers" in result.stderr


def test_the_exit_code_of_several_targets_is_the_worst_and_the_others_still_run(
        config: Path, targets_ctx: AppContext, two_audiences: MailchimpEmulator) -> None:
    with single_runner(targets_ctx.engine, f"sync:{TEST_AUDIENCE_ID}"):
        result = invoke(config)

    assert result.exit_code == 5
    assert "target newsletter: another sync run is in progress" in result.stderr
    assert two_audiences.member(BOB, list_id=OFFERS_AUDIENCE) is not None
