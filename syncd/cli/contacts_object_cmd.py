"""`syncd contacts object EMAIL --purpose P`: an objection to direct marketing for one
purpose (Art. 21(2)-(3), rule 11), recorded at once: withdrawn, off its lists, suppressed."""

from __future__ import annotations

from typing import Annotated

import typer

from syncd.addresses import parse_address
from syncd.cli.common import fail, handle_errors, open_context, out_console
from syncd.clock import utcnow
from syncd.exit_codes import ExitCode


@handle_errors
def object_to(
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    *,
    purpose: Annotated[str, typer.Option(help="The purpose objected to (e.g. offers).")],
    channel: Annotated[str, typer.Option(help="How the objection came in.")] = "crm",
) -> None:
    """Record an objection to direct marketing for a purpose (Art. 21(2)-(3), rule 11): a
    withdrawal of it, off its lists and suppressed, at once; a later purchase does not
    undo it."""
    import secrets
    from datetime import timedelta

    from syncd.consent.ledger import ConsentRecord
    from syncd.consent.policy import Action
    from syncd.db import transaction
    from syncd.webhooks import purge

    key = parse_address(email).key
    ctx = open_context()
    try:
        if purpose not in ctx.settings.purposes:
            raise fail(f"unknown purpose {purpose!r} (known: "
                       f"{', '.join(sorted(ctx.settings.purposes))})", ExitCode.CONFIG)
        now = utcnow()
        with transaction(ctx.sessions) as session:
            known = purge.find(session, key, now)
            if known is None:
                raise fail("no contact with this address", ExitCode.NOT_FOUND)
            record = ConsentRecord(purpose=purpose, action=Action.WITHDRAWN,
                                   occurred_at=now, source=channel[:64], reason="objection")
            purge.withdraw(session, known, [ctx.keyring.address_hmac(key)], purge.Withdrawal(
                purpose=purpose, moment=now, record=record,
                dedupe_salt=secrets.token_hex(8), why="objection", abuse=False,
                deleted=False, channel=channel[:64], actor="cli",
                suppression_scope=purpose, suppression_reason="objection",
                window=timedelta(0)))
    finally:
        ctx.close()
    out_console.print(f"objection to {purpose} recorded: withdrawn, off its lists, "
                      "suppressed", markup=False)
