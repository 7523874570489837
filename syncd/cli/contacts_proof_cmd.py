"""`syncd contacts proof EMAIL [--target NAME]`: proof of consent (Art. 7(1)), per
purpose the whole story, with Mailchimp's own record read live in the target's audience."""

from __future__ import annotations

from typing import Annotated

import typer

from syncd.addresses import parse_address
from syncd.cli.common import (
    TargetName,
    fail,
    handle_errors,
    json_dumps,
    open_context,
    out_console,
)
from syncd.exit_codes import ExitCode


@handle_errors
def proof(
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    *,
    as_json: Annotated[bool, typer.Option("--json", help="Print the documented JSON "
                                                          "(docs/subject-data.md).")] = False,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Do not read Mailchimp's record (it is then marked not read).")]
    = False,
    target: TargetName = None,
) -> None:
    """Proof of consent (Art. 7(1)): per purpose, the whole story in order, with
    Mailchimp's own record of the opt-in (in the target's audience) and the webhooks
    received about the person."""
    from syncd.crm.proof import proof_for, render_text

    parse_address(email)
    ctx = open_context()
    try:
        # Mailchimp is read in one audience: the named target's, or the only one.
        wanted = not offline and (target is not None or bool(ctx.settings.sync_targets))
        audience = ctx.settings.target(target).audience_id if wanted else None
        doc = proof_for(ctx, email, read_esp=not offline, audience_id=audience)
    finally:
        ctx.close()
    if doc is None:
        raise fail("no contact with this address (an erased person leaves only a "
                   "suppression entry: see `syncd contacts export`)", ExitCode.NOT_FOUND)
    if as_json:
        out_console.print(json_dumps(doc), markup=False)
        return
    for line in render_text(doc):
        out_console.print(line, markup=False)
