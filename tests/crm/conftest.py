"""Fixtures for the CRM tests: import files, the real CLI on the test database, row counts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import text
from typer.testing import CliRunner

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from tests.conftest import TEST_LISTS, TEST_PSEUDONYM_KEY

TABLES = ("contacts", "consent_events", "list_memberships", "audit_log", "suppressions")

Cli = Callable[..., Result]


def consent(purpose: str = "newsletter", action: str = "confirmed",
            at: str = "2026-03-01T10:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"purpose": purpose, "action": action, "at": at, **extra}


def signed_up(purpose: str = "newsletter") -> list[dict[str, Any]]:
    """A double opt-in: the sign-up (given), then its confirmation (the default consent):
    a confirmation alone is refused (issue 11: it must confirm a valid sign-up)."""
    return [consent(purpose, "given", "2026-03-01T09:00:00Z"), consent(purpose)]


def contact_line(email: str = "ada@example.com", **fields: Any) -> dict[str, Any]:
    return {"email": email, **fields}


def write_jsonl(path: Path, lines: Sequence[dict[str, Any] | str]) -> Path:
    path.write_text("".join((item if isinstance(item, str) else json.dumps(item)) + "\n"
                            for item in lines), encoding="utf-8")
    return path


def counts(ctx: AppContext) -> dict[str, int]:
    with ctx.engine.connect() as conn:
        return {table: int(conn.execute(text(f"select count(*) from {table}")).scalar_one())
                for table in TABLES}


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    """A settings file for the CLI, matching `tests.conftest.make_settings`."""
    lines = [f"database_url = {json.dumps(database_url)}",
             f"pseudonym_key = {json.dumps(TEST_PSEUDONYM_KEY)}", "[log]", "format = \"json\""]
    for name, cfg in TEST_LISTS.items():
        lines += [f"[lists.{name}]", f"purpose = {json.dumps(cfg.purpose)}",
                  f"marketing = {str(cfg.marketing).lower()}"]
    path = tmp_path / "syncd.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def cli(config_file: Path) -> Cli:
    """Run `syncd ...` through the real Typer app against the test database."""
    from syncd.cli import _register_all, app

    if not any(command.name == "import" for command in app.registered_commands):
        _register_all()

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, ["--config", str(config_file), *args], input=input)

    return run


@pytest.fixture
def emulated_cli(config_file: Path, cli: Cli, emulator: MailchimpEmulator) -> Cli:
    """`cli`, with the Mailchimp settings pointing at the (emptied) emulator."""
    with config_file.open("a", encoding="utf-8") as out:
        out.write(f'[mailchimp]\napi_key = "{emulator.api_key}"\n'
                  f'audience_id = "{emulator.list_id}"\nbase_url = "{emulator.base_url}"\n'
                  "retry_max_wait_seconds = 0.02\nmax_retries = 1\n")
    return cli
