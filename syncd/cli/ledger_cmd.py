"""`syncd ledger verify|head`: check the consent ledger's hash chain, and export its head
to be kept elsewhere (a rewrite of the whole chain is caught only against such a copy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from syncd.cli.common import fail, handle_errors, json_dumps, open_context, out_console
from syncd.errors import InputError
from syncd.exit_codes import ExitCode


def _expected(path: Path | None) -> tuple[int, str] | None:
    if path is None:
        return None
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        seq, link = int(data["seq"]), str(data["hash"])
    except OSError as exc:
        raise InputError(f"--expect-head {path}: cannot read: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError):
        raise InputError(f"--expect-head {path}: not a head exported by `syncd ledger head` "
                         "(JSON with \"seq\" and \"hash\")") from None
    if len(link) != 64 or seq < 0:
        raise InputError(f"--expect-head {path}: \"hash\" must be 64 hex digits and \"seq\" "
                         "not negative")
    return seq, link


@handle_errors
def verify(
    *,
    expect_head: Annotated[Path | None, typer.Option(
        "--expect-head", help="A head exported earlier by `syncd ledger head --json`; it "
                              "must still be in the chain.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """Walk the ledger's hash chain; name the first event changed, removed or out of order.

    Exit 0 when the chain is whole, 1 when it is not."""
    from syncd.consent.chain_verify import verify as run_verify

    expected = _expected(expect_head)
    ctx = open_context()
    try:
        with ctx.sessions() as session:
            verdict = run_verify(session, expected=expected)
    finally:
        ctx.close()
    if as_json:
        out_console.print(json_dumps(verdict.as_dict()), markup=False)
    elif verdict.ok:
        out_console.print(f"ledger chain verified: {verdict.events} events, "
                          f"{verdict.tombstones} erased (tombstones), head at position "
                          f"{verdict.head_seq} {verdict.head_hash}", markup=False)
    if verdict.problem is not None:
        raise fail(f"ledger chain broken ({verdict.problem.kind}): {verdict.problem.message}",
                   ExitCode.FAILED)


@handle_errors
def show_head(
    *,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON (what --expect-head "
                                                          "reads).")] = False,
) -> None:
    """The chain head (position and link) to keep outside syncd's database."""
    from syncd.store.ledger import head

    ctx = open_context()
    try:
        with ctx.sessions() as session:
            found = head(session)
    finally:
        ctx.close()
    at = found.updated_at.isoformat() if found.updated_at else None
    if as_json:
        out_console.print(json_dumps({"seq": found.seq, "hash": found.hash, "at": at}),
                          markup=False)
    else:
        out_console.print(f"position {found.seq}  {found.hash}  (moved {at or 'never'})",
                          markup=False)


def register(app: typer.Typer) -> None:
    ledger = typer.Typer(help="The consent ledger's hash chain: verify it, export its head.",
                         no_args_is_help=True)
    ledger.command("verify")(verify)
    ledger.command("head")(show_head)
    app.add_typer(ledger, name="ledger")
