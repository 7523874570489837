"""`syncd serve`: the long-running service (webhooks, scheduled sync, reconciliation,
inbox retry, retention), for one or several replicas on one database."""

from __future__ import annotations

from typing import Annotated

import typer

from syncd.cli.common import handle_errors, open_context, settings


@handle_errors
def serve(
    *,
    host: Annotated[str | None, typer.Option(
        help="Address to bind (default: setting http_host, SYNCD_HTTP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(
        help="Port to listen on (default: setting http_port, SYNCD_HTTP_PORT).")] = None,
) -> None:
    """Run the service: webhooks, scheduled sync and reconciliation, health and metrics.

    Receives Mailchimp webhooks, syncs and reconciles on a schedule, retries the inbox and
    prunes old data; serves /healthz, /readyz and /metrics. The first SIGTERM or Ctrl-C
    finishes the current batch; a second one exits at once."""
    from syncd.service.server import serve as run_service

    loaded = settings()
    # A service that cannot sync is misconfigured: say so now (every target's audience
    # shares the one API key).
    targets = loaded.sync_targets
    loaded.require_mailchimp(targets[0].audience_id if targets else None)
    loaded.require_webhook_secret()  # nor one that would answer every webhook 401
    ctx = open_context(migrate=True)
    try:
        code = run_service(ctx, host=host or ctx.settings.http_host,
                           port=ctx.settings.http_port if port is None else port)
    finally:
        ctx.close()
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
