"""Fixtures for the reconciliation tests: the emulator, and the real CLI on a config file
that points at it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from mailchimp_emulator import DEFAULT_API_KEY, MailchimpEmulator
from tests.conftest import (
    TEST_AUDIENCE_ID,
    TEST_LISTS,
    TEST_OLD_WEBHOOK_SECRET,
    TEST_PSEUDONYM_KEY,
    TEST_WEBHOOK_SECRET,
)
from tests.webhooks.conftest import serve_app, served_for  # noqa: F401 - fixtures
from tests.webhooks.emulated import emulated_context  # noqa: F401 - fixture

Cli = Callable[..., Result]


def write_config(path: Path, database_url: str, emu: MailchimpEmulator) -> Path:
    lines = [f"database_url = {json.dumps(database_url)}",
             f"pseudonym_key = {json.dumps(TEST_PSEUDONYM_KEY)}",
             "[log]", 'format = "json"', 'level = "warning"',
             "[mailchimp]", f"api_key = {json.dumps(DEFAULT_API_KEY)}",
             f"audience_id = {json.dumps(TEST_AUDIENCE_ID)}",
             f"base_url = {json.dumps(emu.base_url)}", "retry_max_wait_seconds = 0.02",
             "[webhook]",
             f"secrets = {json.dumps([TEST_WEBHOOK_SECRET, TEST_OLD_WEBHOOK_SECRET])}"]
    for name, cfg in TEST_LISTS.items():
        lines += [f"[lists.{name}]", f"purpose = {json.dumps(cfg.purpose)}",
                  f"marketing = {str(cfg.marketing).lower()}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def cli(tmp_path: Path, database_url: str,
        emulator: MailchimpEmulator) -> Cli:
    """Run `syncd ...` through the real Typer app against the test database and emulator."""
    from syncd.cli import _register_all, app

    config = write_config(tmp_path / "syncd.toml", database_url, emulator)
    if not any(group.name == "webhooks" for group in app.registered_groups):
        _register_all()

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, ["--config", str(config), *args])

    return run
