"""`syncd emulator`: run the local Mailchimp emulator in the foreground."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from mailchimp_emulator import DEFAULT_API_KEY, DEFAULT_LIST_ID
from syncd.cli.common import fail
from syncd.exit_codes import ExitCode


def emulator(
    *,
    host: Annotated[str, typer.Option(help="Address to bind; control endpoints need loopback.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8765,
    api_key: Annotated[str, typer.Option(help="The API key clients must send.")] = DEFAULT_API_KEY,
    list_id: Annotated[str, typer.Option(help="The id of the default audience.")] = (
        DEFAULT_LIST_ID
    ),
    audiences: Annotated[
        list[str] | None,
        typer.Option(
            "--audience",
            help="The id of one more audience of the account (repeat for several; "
            "each starts empty, without GDPR fields or groups).",
        ),
    ] = None,
    latency_ms: Annotated[float, typer.Option(help="Delay added to every API call.")] = 0.0,
    max_connections: Annotated[
        int, typer.Option(help="Simultaneous requests before 429 (Mailchimp: 10).")
    ] = 10,
    members: Annotated[
        Path | None,
        typer.Option(
            "--members",
            help="Start with these pre-existing members: a JSON array, "
            '{"members": [...]} or JSON Lines of member objects.',
        ),
    ] = None,
) -> None:
    """Serve a local Mailchimp Marketing API v3 until Ctrl-C or SIGTERM.

    Prints its base URL on stdout once it listens (with --port 0, the port it picked).
    Exit 1 when it cannot listen (the port is taken), before printing anything."""
    from mailchimp_emulator import MailchimpEmulator
    from mailchimp_emulator.seed_file import SeedFileError, read_members, seed_members

    seeded = []
    if members is not None:
        try:
            seeded = read_members(members)
        except (OSError, SeedFileError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(3) from None
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    try:
        emu = MailchimpEmulator(
            api_key=api_key,
            list_id=list_id,
            host=host,
            port=port,
            latency_ms=latency_ms,
            max_connections=max_connections,
            audiences=tuple(audiences or ()),
        )
    except ValueError as exc:  # a list id that is not 1-32 letters and digits, or twice
        raise fail(f"--audience: {exc}", ExitCode.CONFIG) from None
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        emu.start()
    except OSError as exc:
        raise fail(f"the emulator cannot listen on {host}:{port}: {exc.strerror or exc}",
                   ExitCode.FAILED) from None
    seed_members(emu, seeded)
    with emu:
        typer.echo(emu.base_url)
        if seeded:
            typer.echo(f"{len(seeded)} pre-existing members", err=True)
        typer.echo(f"list id {', '.join(emu.audiences)}; API key {emu.api_key}", err=True)
        if emu.loopback:
            typer.echo(f"control {emu.control_url}/", err=True)
        while not stop.wait(0.5):
            pass


def register(app: typer.Typer) -> None:
    app.command("emulator")(emulator)
