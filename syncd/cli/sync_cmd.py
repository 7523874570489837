"""`syncd sync [--target NAME] [--full] [--dry-run] [--json] [--force]`: one sync run of
each target (or of the one named), the function the scheduler runs too.

Exit codes: 0 OK; 1 FAILED (run-level ESP error: bad key, unknown audience, Mailchimp
unavailable after retries); 2 CONFIG; 4 REFUSED (safety limit; --force if intended);
5 BUSY (another run holds the lock); 6 PARTIAL (finished, some contacts parked or failed).
A dry run exits 0, or 4 if the real run would be refused."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from syncd.cli.common import err_console, fail, handle_errors, open_context, out_console
from syncd.cli.progress import logs_above
from syncd.config.targets import TargetSettings
from syncd.context import AppContext
from syncd.esp.errors import EspError
from syncd.exit_codes import ExitCode
from syncd.run_summary import log_summary
from syncd.runner_lock import RunnerBusy
from syncd.sync.run import run_sync
from syncd.sync.sync_report import SyncReport


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    with Progress(TextColumn("syncing"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as bar, \
            logs_above(bar.console):  # a log line lands above the bar, not inside it
        task = bar.add_task("sync", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


def _table(report: SyncReport) -> Table:
    title = "sync plan (dry run: nothing written)" if report.dry_run else "sync run"
    table = Table(title=f"{title}, target {report.target}, audience {report.audience_id}",
                  show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [("added", report.added), ("updated", report.updated),
            ("unsubscribed", report.unsubscribed),
            ("re-consent sent as pending", report.reconsent_pending),
            ("adopted (earlier unconfirmed adds)", report.adopted),
            ("unchanged", report.unchanged)]
    rows += [(f"skipped: {reason}", n) for reason, n in report.skipped.items()]
    rows += [("parked (refused by Mailchimp)", report.parked), ("failed", report.failed),
             ("write calls", report.write_calls)]
    for label, value in rows:
        table.add_row(label, str(value))
    if report.replanned:
        table.add_row(f"re-planned everyone ({report.replanned})", str(report.considered))
    table.add_row("duration", f"{report.duration_seconds:.2f} s")
    return table


def _show(report: SyncReport, as_json: bool) -> None:
    if as_json:
        out_console.print_json(report.to_json())
        return
    out_console.print(_table(report))
    if report.examples:
        examples = Table(title="examples (first 10)")
        for column in ("address", "action", "reason"):
            examples.add_column(column)
        for example in report.examples:
            # Addresses are shown to the operator here, never logged.
            examples.add_row(example.email, example.action, example.reason)
        out_console.print(examples)


def _exit_code(report: SyncReport) -> ExitCode:
    if report.outcome == "refused":
        return ExitCode.REFUSED
    if report.partial:
        return ExitCode.PARTIAL
    return ExitCode.OK


# Several targets: the exit code is the worst of theirs, in this order.
_SEVERITY = (ExitCode.OK, ExitCode.PARTIAL, ExitCode.REFUSED, ExitCode.BUSY, ExitCode.FAILED)


def _one(ctx: AppContext, target: TargetSettings, *, dry_run: bool, force: bool,
         full: bool, as_json: bool, alone: bool) -> ExitCode:
    """Sync one target and show its report. BUSY and FAILED: the command's error when it
    is the only target (`alone`), else said on stderr and the next target runs."""
    prefix = "" if alone else f"target {target.name}: "
    try:
        with _progress(not as_json and err_console.is_terminal) as progress:
            report = run_sync(ctx, target=target, dry_run=dry_run, force=force, full=full,
                              progress=progress)
    except RunnerBusy as exc:
        error = fail(f"{prefix}{exc}", ExitCode.BUSY)
        if alone:
            raise error from None
        return ExitCode.BUSY
    except EspError as exc:
        error = fail(f"{prefix}sync failed: {exc}", ExitCode.FAILED)
        if alone:
            raise error from None
        return ExitCode.FAILED
    if not report.dry_run:
        log_summary("sync", report, report.duration_seconds)
    _show(report, as_json)
    if report.outcome == "refused" and report.error:
        err_console.print(f"[bold red]{report.error}[/]")
    return _exit_code(report)


@handle_errors
def sync(
    dry_run: Annotated[bool, typer.Option("--dry-run", help=(
        "Show the planned changes; write nothing, here or at Mailchimp."))] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    force: Annotated[bool, typer.Option("--force", help=(
        "Run even if the plan unsubscribes more than the target's "
        "max_unsubscribe_share ([[targets]]; sync_max_unsubscribe_share with the "
        "single-audience settings) of the members syncd knows."))] = False,
    target: Annotated[str | None, typer.Option("--target", help=(
        "Sync only this target (settings [[targets]] name); default: every target, "
        "one after the other."))] = None,
    full: Annotated[bool, typer.Option("--full", help=(
        "Plan every contact of the target again, not only those that changed (parked "
        "contacts are retried)."))] = False,
) -> None:
    """Push contacts with a confirmed consent to Mailchimp; unsubscribe withdrawals.

    Exit codes: 0 OK, 1 FAILED (run-level Mailchimp or database error), 2 CONFIG,
    4 REFUSED (safety limit; --force if intended), 5 BUSY (another run), 6 PARTIAL
    (some contacts parked or failed). With several targets: the worst of theirs."""
    ctx = open_context(migrate=True)
    try:
        chosen = ((ctx.settings.target(target),) if target is not None
                  else ctx.settings.sync_targets or (ctx.settings.target(),))
        codes = [_one(ctx, t, dry_run=dry_run, force=force, full=full, as_json=as_json,
                      alone=len(chosen) == 1) for t in chosen]
        code = max(codes, key=_SEVERITY.index)
    finally:
        ctx.close()
    if code is not ExitCode.OK:
        sys.stdout.flush()
        raise typer.Exit(int(code))


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
