"""`syncd demo [--json] [--dir PATH]`: syncd's whole job on the embedded default.

Exit codes: 0 every step behaved as the rules say; 1 FAILED (a check failed, or the
demo could not run; the message names which); 2 CONFIG (syncd/demo/demo.toml missing or
wrong, --dir not usable)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from syncd.cli.common import err_console, handle_errors, out_console
from syncd.exit_codes import ExitCode


@handle_errors
def demo(
    *,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON document: each step, its checks and their outcome.")
    ] = False,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Keep the demo's database (and a settings file for it) in this empty "
                      "directory. Default: a temporary one, removed at the end.")] = None,
) -> None:
    """Run syncd's whole job locally: import a sample CRM, sync to a Mailchimp emulator,
    purge an unsubscribe webhook, re-sync, an existing audience, a sign-up, and a second
    target (offers to customers); every step checked. Needs no account.

    Uses its own settings (syncd/demo/demo.toml); --config and SYNCD_* variables are ignored."""
    from syncd.demo.narration import Narrator, report_json
    from syncd.demo.report import DemoReport, exit_code
    from syncd.demo.runner import run_demo

    narrator = None if as_json else Narrator(out_console)
    report: DemoReport = run_demo(directory=directory, observer=narrator)
    if as_json:
        out_console.print(report_json(report), markup=False, highlight=False, soft_wrap=True)
    else:
        assert narrator is not None
        narrator.summary(report)
    code = exit_code(report)
    if code is not ExitCode.OK:
        failed = report.failed_checks()
        if report.error:
            what = f"the demo could not run: {report.error}"
        else:
            reason = f"step {failed[0][0]}: {failed[0][1].name}" if failed else "incomplete"
            what = f"the demo did not behave as the rules say: {reason}"
        err_console.print(f"[bold red]error:[/] {escape(what)}", markup=True)
        raise typer.Exit(int(code))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
