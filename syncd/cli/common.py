"""What every command shares: the global --config option, the app context, logging, and
turning errors into one clear line and a documented exit code."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import OperationalError

from syncd import logs
from syncd.config import Settings, load_settings
from syncd.context import AppContext
from syncd.errors import ConfigError, InputError
from syncd.exit_codes import ExitCode

P = ParamSpec("P")
R = TypeVar("R")

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


# Failures a command reports itself on its `error:` line: on a terminal the log line of
# the same failure would print it twice. Machine sinks (JSON, a file, the journal) keep it.
REPORTED_BY_THE_COMMAND = frozenset({"import_refused", "sync_failed", "sync_refused"})


class _ReportedByTheCommand(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        event = record.msg.get("event") if isinstance(record.msg, dict) else None
        return event not in REPORTED_BY_THE_COMMAND


def _once_on_a_terminal() -> None:
    if not err_console.is_terminal:
        return
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _ReportedByTheCommand) for f in handler.filters):
            handler.addFilter(_ReportedByTheCommand())


# `--target NAME` of the commands that act on one audience: the only target by default;
# several configured and none named, or an unknown name, is a ConfigError listing them
# (Settings.target).
TargetName = Annotated[str | None, typer.Option("--target", help=(
    "The target (settings [[targets]] name) whose audience this acts on; needed when "
    "several targets are configured."), show_default=False)]


class CliState:
    config_path: str | None = None


def settings() -> Settings:
    return load_settings(CliState.config_path)


def open_context(*, migrate: bool = False, require_schema: bool = True) -> AppContext:
    """Settings, engine, logging with the installation keyring.

    Only `db upgrade`, `serve` and `sync` pass `migrate` (create or upgrade the schema to
    head). Every other command refuses a database that does not exist or is not at head
    (ConfigError, exit 2), so that a mistyped path never silently becomes a new, empty
    database; `db current` passes `require_schema=False` to look without touching."""
    loaded = settings()
    if not migrate:
        _require_existing(loaded.database_url)
    ctx = AppContext.open(loaded)
    secrets = tuple(s.get_secret_value() for s in loaded.webhook_secrets)
    if loaded.mailchimp_api_key is not None:
        secrets += (loaded.mailchimp_api_key.get_secret_value(),)
    if loaded.pseudonym_key is not None:
        secrets += (loaded.pseudonym_key.get_secret_value(),)
    secrets += logs.url_password(loaded.database_url)
    logs.configure(level=loaded.log_level, fmt=loaded.log_format, secrets=secrets)
    if migrate:
        from syncd.migrate import upgrade

        upgrade(ctx.engine)
    elif require_schema:
        _require_head(ctx)
    else:
        return ctx
    ctx.sync_lists()
    logs.configure(level=loaded.log_level, fmt=loaded.log_format, keyring=ctx.keyring,
                   secrets=secrets)
    _once_on_a_terminal()
    return ctx


def _require_existing(url: str) -> None:
    from syncd.db import sqlite_path

    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise ConfigError(f"setting 'database_url': no database at {path} (run `syncd db "
                          "upgrade` to create one, or fix the path)")


def _require_head(ctx: AppContext) -> None:
    from syncd.migrate import current_revision, head_revision

    now, head = current_revision(ctx.engine), head_revision()
    if now == head:
        return
    ctx.close()
    if now is None:
        raise ConfigError("the database has no syncd schema yet: run `syncd db upgrade`")
    raise ConfigError(f"the database schema is at revision {now}, this syncd needs {head}: "
                      "run `syncd db upgrade`")


def fail(message: str, code: ExitCode) -> typer.Exit:
    # Escaped: messages name TOML tables like "[mailchimp] api_key", not rich markup.
    err_console.print(f"[bold red]error:[/] {escape(logs.redactor().scrub_text(message))}")
    return typer.Exit(int(code))


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Configuration and input errors become one line on stderr and an exit code; a
    traceback is for bugs only."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise fail(str(exc), ExitCode.CONFIG) from None
        except InputError as exc:
            raise fail(str(exc), ExitCode.INVALID_INPUT) from None
        except OperationalError as exc:
            # Connection refused, database missing, locked too long: say which, not a trace.
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            raise fail(f"database unavailable: {reason}", ExitCode.FAILED) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper


def _print_version(wanted: bool) -> None:
    if wanted:
        from syncd import __version__

        out_console.print(f"syncd {__version__}", markup=False)
        raise typer.Exit(int(ExitCode.OK))


def global_options(
    config: str | None = typer.Option(
        None, "--config", "-c", envvar="SYNCD_CONFIG",
        help="TOML settings file (default: none; SYNCD_* variables still apply)."),
    version: bool = typer.Option(  # noqa: ARG001 - handled by its eager callback
        False, "--version", is_eager=True, callback=_print_version,
        help="Print the version and exit."),
) -> None:
    CliState.config_path = config


def json_dumps(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=True, default=str)
