"""`syncd webhooks register --url URL` and `syncd webhooks check`: the audience webhook
of one target (`--target NAME`; the only one by default).

Exit codes: 0 OK; 1 FAILED (Mailchimp unreachable or refused, or check found a webhook
misconfigured); 2 CONFIG; 3 INVALID_INPUT (the URL is not https or does not end in a
configured secret); 7 NOT_FOUND (check found no webhook carrying a configured secret)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from syncd.cli.common import TargetName, fail, handle_errors, json_dumps, out_console, settings
from syncd.esp.errors import EspError
from syncd.exit_codes import ExitCode

if TYPE_CHECKING:
    from syncd.esp.mailchimp import MailchimpClient


def _secrets() -> list[str]:
    return [s.get_secret_value() for s in settings().webhook_secrets]


def _client(target: str | None) -> MailchimpClient:
    """The client of the named target's audience (several targets: the name is needed)."""
    from syncd.esp.mailchimp import mailchimp_client

    loaded = settings()
    return mailchimp_client(loaded, loaded.target(target).audience_id)


@handle_errors
def register_webhook(
    url: Annotated[str, typer.Option("--url", help=(
        "Public https URL of this service's endpoint, ending in a configured secret: "
        "https://host/webhooks/mailchimp/<secret>."))],
    target: TargetName = None,
) -> None:
    """Create or update the audience webhook: member events on, campaign off, sources
    user and admin (api off, so syncd's own writes do not echo back). One URL serves
    every target: syncd routes each event by its audience (list_id)."""
    from syncd.webhooks.registration import masked_url
    from syncd.webhooks.registration import register as register_hook

    secrets = _secrets()
    client = _client(target)
    try:
        done = register_hook(client, url, secrets)
    except EspError as exc:
        raise fail(f"webhook registration failed: {exc}", ExitCode.FAILED) from None
    finally:
        client.close()
    verb = "created" if done.created else "updated"
    out_console.print(f"webhook {done.webhook.id} {verb}: {masked_url(done.webhook.url)} "
                      "(events subscribe, unsubscribe, profile, cleaned, upemail; "
                      "sources user, admin; api off)")


@handle_errors
def check_webhooks(
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    target: TargetName = None,
) -> None:
    """Check the audience webhook: present, api source off, every member event on, URL
    ending in a configured secret. Exit 7 when there is none, 1 when one is misconfigured."""
    from syncd.webhooks.registration import check, masked_url

    client = _client(target)
    try:
        ours, findings = check(client, _secrets())
    except EspError as exc:
        raise fail(f"webhook check failed: {exc}", ExitCode.FAILED) from None
    finally:
        client.close()
    if as_json:
        out_console.print(json_dumps({
            "webhooks": [{"id": w.id, "url": masked_url(w.url)} for w in ours],
            "problems": [{"id": f.webhook_id, "url": f.url, "problem": f.problem}
                         for f in findings]}), soft_wrap=True)
    else:
        for hook in ours:
            out_console.print(f"webhook {hook.id}: {masked_url(hook.url)}")
        for finding in findings:
            where = f"webhook {finding.webhook_id} " if finding.webhook_id else ""
            out_console.print(f"[bold red]problem:[/] {where}{finding.problem}")
        if not findings:
            out_console.print("webhook configuration OK")
    if not ours:
        raise typer.Exit(int(ExitCode.NOT_FOUND))  # nothing to deliver unsubscribes
    if findings:
        raise typer.Exit(int(ExitCode.FAILED))


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The Mailchimp audience webhook.", no_args_is_help=True)
    group.command("register")(register_webhook)
    group.command("check")(check_webhooks)
    app.add_typer(group, name="webhooks")
