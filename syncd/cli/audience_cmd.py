"""`syncd audience pull | audit | remedy`: the members an audience already had.

Exit codes: 0 OK; 1 FAILED (Mailchimp or the database unavailable); 2 CONFIG; 4 REFUSED
(remedy above the safety limit; --force if intended); 5 BUSY (a sync holds the lock);
6 PARTIAL (remedy: some members failed); 8 AUDIT_FINDINGS (audit: somebody is mailed
against or without the ledger: classes mailed_against_ledger, mailed_without_consent,
subscribed_without_contact)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from syncd.cli.common import (
    TargetName,
    err_console,
    fail,
    handle_errors,
    open_context,
    out_console,
)
from syncd.esp.errors import EspError
from syncd.exit_codes import ExitCode
from syncd.runner_lock import RunnerBusy


def _failed(what: str, exc: Exception) -> typer.Exit:
    if isinstance(exc, RunnerBusy):
        return fail(str(exc), ExitCode.BUSY)
    if isinstance(exc, SQLAlchemyError):
        return fail(f"{what} failed: database unavailable ({type(exc).__name__})",
                    ExitCode.FAILED)
    return fail(f"{what} failed: {exc}", ExitCode.FAILED)


@handle_errors
def pull(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    target: TargetName = None,
) -> None:
    """Read the whole audience and record Mailchimp's state of every member that matches
    a CRM contact (the first sync does this by itself)."""
    from syncd.sync.audience_pull import run_pull

    ctx = open_context()
    try:
        report = run_pull(ctx, target=ctx.settings.target(target))
    except (RunnerBusy, EspError, SQLAlchemyError) as exc:
        raise _failed("audience pull", exc) from None
    finally:
        ctx.close()
    if as_json:
        out_console.print(report.to_json(), soft_wrap=True)
        return
    out_console.print(
        f"audience pull {report.outcome}: {report.seen} members read in "
        f"{report.read_calls} calls, {report.matched} match a CRM contact "
        f"({report.recorded} states recorded), {report.unmatched} match none (not "
        f"written), {report.withdrawals_reported} unsubscribes new to syncd; "
        f"{report.duration_seconds:.2f} s")


@handle_errors
def audit_audience(
    as_json: Annotated[bool, typer.Option("--json", help=(
        "Print counts and every finding (addresses included) as JSON."))] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", help=(
        "Write every member with its class to this CSV file (addresses included)."))] = None,
    target: TargetName = None,
) -> None:
    """Hold the live audience against the ledger, read-only. Exit 8 when somebody is
    mailed against or without the ledger."""
    from syncd.esp.mailchimp import mailchimp_client
    from syncd.sync.audience_audit import CLASSES, Finding, run_audit

    ctx = open_context()
    try:
        chosen = ctx.settings.target(target)
    except BaseException:
        ctx.close()
        raise
    findings: list[dict[str, object]] = []
    handle = csv_path.open("w", newline="", encoding="utf-8") if csv_path else None
    writer = csv.writer(handle) if handle else None
    if writer:
        writer.writerow(["email_address", "status", "class", "reason"])

    def each(finding: Finding) -> None:
        if writer:
            writer.writerow([finding.email, finding.status, finding.klass, finding.reason])
        if as_json and finding.klass != "consistent":
            findings.append({"email_address": finding.email, "status": finding.status,
                             "class": finding.klass, "reason": finding.reason})

    esp = mailchimp_client(ctx.settings, chosen.audience_id)
    try:
        report = run_audit(ctx, esp, each=each, target=chosen)
    except (EspError, SQLAlchemyError) as exc:
        raise _failed("audience audit", exc) from None
    finally:
        esp.close()
        ctx.close()
        if handle:
            handle.close()
    if as_json:
        # Not sorted: the classes stay worst first.
        out_console.print(json.dumps(report.to_dict() | {"findings": findings}, indent=2),
                          soft_wrap=True)
    else:
        out_console.print(f"target {chosen.name}, audience {report.audience_id}: "
                          f"{report.members} members")
        for name in CLASSES:
            out_console.print(f"  {name:<28} {report.counts[name]:>9}")
        for reason, n in sorted(report.reasons.items()):
            out_console.print(f"    {escape(reason):<40} {n:>9}")
        due = report.repermission
        if due.get("count"):
            out_console.print(f"  consents older than {due['older_than_days']} days, due for "
                              f"re-permission: {due['count']} "
                              f"({', '.join(f'{p} {n}' for p, n in due['by_purpose'].items())})")
    if report.failing:
        sys.stdout.flush()
        raise typer.Exit(int(ExitCode.AUDIT_FINDINGS))


@handle_errors
def remedy(
    klass: Annotated[str, typer.Option("--class", help=(
        "The audit class to act on: mailed_without_consent or "
        "subscribed_without_contact."))],
    action: Annotated[str, typer.Option("--action", help=(
        "unsubscribe (PATCH status unsubscribed) or archive (Mailchimp's DELETE)."))],
    dry_run: Annotated[bool, typer.Option("--dry-run", help=(
        "Show who would be changed; change nothing."))] = False,
    force: Annotated[bool, typer.Option("--force", help=(
        "Act even above the safety limit."))] = False,
    target: TargetName = None,
) -> None:
    """Act on members the audit finds mailed without provable consent. Writes no
    withdrawal into the ledger (the person made none)."""
    from syncd.esp.mailchimp import mailchimp_client
    from syncd.sync.audience_remedy import run_remedy

    ctx = open_context()
    try:
        chosen = ctx.settings.target(target)
        esp = mailchimp_client(ctx.settings, chosen.audience_id)
    except BaseException:
        ctx.close()
        raise
    try:
        report = run_remedy(ctx, esp, klass=klass, action=action, dry_run=dry_run,
                            force=force, target=chosen)
    except ValueError as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None
    except (EspError, SQLAlchemyError) as exc:
        raise _failed("audience remedy", exc) from None
    finally:
        esp.close()
        ctx.close()
    out_console.print(f"remedy {report.action} of {report.klass}: {report.outcome}; "
                      f"{report.selected} selected, {report.done} done, {report.missing} "
                      f"missing, {report.failed} failed (limit {report.limit})")
    if report.dry_run or report.outcome == "refused":
        for email in report.examples:
            out_console.print(f"  {escape(email)}")
    if report.outcome == "refused":
        err_console.print(f"[bold red]{report.error}[/]")
        raise typer.Exit(int(ExitCode.REFUSED))
    if report.outcome == "partial":
        raise typer.Exit(int(ExitCode.PARTIAL))


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The members a Mailchimp audience already had.",
                        no_args_is_help=True)
    group.command("pull")(pull)
    group.command("audit")(audit_audience)
    group.command("remedy")(remedy)
    app.add_typer(group, name="audience")
