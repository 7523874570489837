"""`syncd prune`: apply the retention settings once (the service does it daily)."""

from __future__ import annotations

from typing import Annotated

import typer

from syncd.cli.common import handle_errors, json_dumps, open_context, out_console

# What each count means, in the order printed.
LABELS = (
    ("webhook_bodies_nulled", "webhook bodies nulled"),
    ("sync_runs_deleted", "run records deleted"),
    ("unconfirmed_signups_deleted", "unconfirmed sign-ups deleted"),
    ("no_purpose_contacts_erased", "contacts with no purpose left erased"),
    ("audit_entries_deleted", "audit entries deleted"),
    ("contacts_kept_live_at_esp", "contacts kept because Mailchimp still mails them"),
    ("webhook_bodies_kept_unsettled", "bodies kept because their events are not applied yet"),
)


@handle_errors
def prune(
    *,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Count what each rule would remove; remove nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Apply the retention settings once (the service does it daily).

    Nulls settled webhook bodies older than retention_webhook_body_days, deletes run
    history older than retention_run_history_days, deletes sign-ups never confirmed
    within retention_unconfirmed_days, erases contacts with no purpose left for
    retention_no_purpose_days (their suppression stays) and audit entries older than
    retention_audit_days (Art. 5(1)(e)). docs/operations.md has the retention table."""
    from syncd.retention import prune as run_prune

    ctx = open_context()
    try:
        counts = run_prune(ctx, dry_run=dry_run)
    finally:
        ctx.close()
    if as_json:
        out_console.print(json_dumps(counts | {"dry_run": dry_run}), markup=False)
        return
    shown = [f"{label}: {counts[key]}" for key, label in LABELS
             if counts[key] or key in ("webhook_bodies_nulled", "sync_runs_deleted")]
    prefix = "dry run, nothing removed; would be " if dry_run else ""
    out_console.print(prefix + "; ".join(shown), markup=False)


def register(app: typer.Typer) -> None:
    app.command("prune")(prune)
