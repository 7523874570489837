"""The `syncd` command line: one Typer app; each command group lives in its own module."""

from __future__ import annotations

import importlib
from typing import Any

import typer
import typer.core

from syncd.cli.common import global_options

_value_type = typer.core.TyperOption.display_type_rich


def _no_type_for_flags(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """A flag takes no value: --help shows no `<bool>` for it."""
    return None if self.is_flag else _value_type(self, ctx)


typer.core.TyperOption.display_type_rich = _no_type_for_flags  # type: ignore[method-assign]

app = typer.Typer(
    name="syncd",
    help="Consent-gated sync between a local CRM and Mailchimp (GDPR/AVG).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Markdown: a docstring's paragraph is re-flowed, not broken where the source line ends.
    rich_markup_mode="markdown",
    callback=global_options,
)

# Each module exposes `register(app)`; the order is the order of `syncd --help`.
_COMMAND_MODULES = (
    "syncd.cli.db_cmd",
    "syncd.cli.sync_cmd",
    "syncd.cli.serve_cmd",
    "syncd.cli.prune_cmd",
    "syncd.cli.import_cmd",
    "syncd.cli.contacts_cmd",
    "syncd.cli.ledger_cmd",
    "syncd.cli.reconcile_cmd",
    "syncd.cli.audience_cmd",
    "syncd.cli.webhooks_cmd",
    "syncd.cli.demo_cmd",
    "syncd.cli.emulator_cmd",
)


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


def main() -> None:
    _register_all()
    app()
