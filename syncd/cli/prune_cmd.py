"""`syncd prune`: apply the retention settings once (the service does it daily)."""

from __future__ import annotations

from typing import Annotated

import typer

from syncd.cli.common import handle_errors, json_dumps, open_context, out_console


@handle_errors
def prune(
    *,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Apply the retention settings once (the service does it daily).

    Nulls raw webhook bodies older than retention_webhook_body_days whose events are
    settled, and deletes run history older than retention_run_history_days (Art. 5(1)(e))."""
    from syncd.retention import prune as run_prune

    ctx = open_context()
    try:
        counts = run_prune(ctx)
    finally:
        ctx.close()
    if as_json:
        out_console.print(json_dumps(counts), markup=False)
        return
    out_console.print(
        f"webhook bodies nulled: {counts['webhook_bodies_nulled']}; "
        f"run records deleted: {counts['sync_runs_deleted']}"
        + (f"; bodies kept because their events are not applied yet: "
           f"{counts['webhook_bodies_kept_unsettled']}"
           if counts["webhook_bodies_kept_unsettled"] else ""))


def register(app: typer.Typer) -> None:
    app.command("prune")(prune)
