"""`syncd reconcile [--target NAME] [--json]`: pull what the webhooks missed, the
function the scheduler runs too.

Exit codes: 0 OK; 1 FAILED (Mailchimp or the database unavailable; the cursor did not
move); 2 CONFIG; 5 BUSY (another reconcile run holds the lock); 6 PARTIAL (finished, but
some events could not be applied: kept in the inbox and retried)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from syncd.cli.common import fail, handle_errors, open_context, out_console
from syncd.esp.errors import EspError
from syncd.exit_codes import ExitCode
from syncd.run_summary import log_summary
from syncd.runner_lock import RunnerBusy
from syncd.webhooks.inbox import InboxUnavailable


@handle_errors
def reconcile(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    target: Annotated[str | None, typer.Option("--target", help=(
        "Reconcile this target's audience (settings [[targets]] name); needed when "
        "several targets are configured."))] = None,
) -> None:
    """Apply unsubscribes and cleaned addresses Mailchimp knows but no webhook brought."""
    from syncd.inbound.reconcile import run_reconcile

    ctx = open_context()
    try:
        report = run_reconcile(ctx, target=ctx.settings.target(target))
        log_summary("reconcile", report, report.duration_seconds)
    except RunnerBusy as exc:
        raise fail(str(exc), ExitCode.BUSY) from None
    except EspError as exc:
        raise fail(f"reconcile failed: {exc}", ExitCode.FAILED) from None
    except (InboxUnavailable, SQLAlchemyError) as exc:
        raise fail(f"reconcile failed: database unavailable ({type(exc).__name__})",
                   ExitCode.FAILED) from None
    finally:
        ctx.close()
    if as_json:
        out_console.print(report.to_json(), soft_wrap=True)
    else:
        kind = "full pull" if report.full_pull else f"since {report.since}"
        out_console.print(
            f"reconcile {report.outcome} ({kind}): {report.seen} members read, "
            f"{report.applied} applied, {report.unchanged} already in effect, "
            f"{report.failed} kept for retry; cursor {report.cursor_after or 'not set'}; "
            f"{report.duration_seconds:.2f} s")
    if report.failed:
        sys.stdout.flush()
        raise typer.Exit(int(ExitCode.PARTIAL))


def register(app: typer.Typer) -> None:
    app.command("reconcile")(reconcile)
