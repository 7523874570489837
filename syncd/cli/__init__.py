"""The `syncd` command line: one Typer app; each command group lives in its own module."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Sequence
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

# Each module exposes `register(app)`; the order is the order of `syncd --help`. The name
# is the command (or group) the module registers: `main` imports only the module of the
# command asked for, which saves a third of the start-up's imports (each module pulls
# in its own layer: the sync engine, the emulator, the HTTP app).
_COMMAND_MODULES = {
    "db": "syncd.cli.db_cmd",
    "sync": "syncd.cli.sync_cmd",
    "serve": "syncd.cli.serve_cmd",
    "prune": "syncd.cli.prune_cmd",
    "import": "syncd.cli.import_cmd",
    "contacts": "syncd.cli.contacts_cmd",
    "ledger": "syncd.cli.ledger_cmd",
    "reconcile": "syncd.cli.reconcile_cmd",
    "audience": "syncd.cli.audience_cmd",
    "webhooks": "syncd.cli.webhooks_cmd",
    "demo": "syncd.cli.demo_cmd",
    "emulator": "syncd.cli.emulator_cmd",
}
# The global options that take a value (the token after them is not a command).
_VALUED_OPTIONS = frozenset({"--config", "-c"})
_END_OF_OPTIONS = "--"
_registered: set[str] = set()


def _register(modules: Iterable[str]) -> None:
    for name in modules:
        if name not in _registered:
            importlib.import_module(name).register(app)
            _registered.add(name)


def _register_all() -> None:
    _register(_COMMAND_MODULES.values())


def _command_asked(argv: Sequence[str]) -> str | None:
    """The command named on the command line, when it is one syncd has (else None:
    `--help`, no command, or a typo, which Typer answers with every command known)."""
    tokens = iter(argv)
    for token in tokens:
        if token in _VALUED_OPTIONS:
            next(tokens, None)
        elif token == _END_OF_OPTIONS:
            return None
        elif not token.startswith("-"):
            return token if token in _COMMAND_MODULES else None
    return None


def main() -> None:
    asked = _command_asked(sys.argv[1:])
    if asked is None:
        _register_all()
    else:
        _register([_COMMAND_MODULES[asked]])
    app()
