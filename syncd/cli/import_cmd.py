"""`syncd import PATH`: contacts, list memberships and consent evidence from JSONL or CSV."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from syncd.cli.common import err_console, handle_errors, json_dumps, open_context, out_console
from syncd.exit_codes import ExitCode


class FileFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


def import_contacts(
    path: Annotated[Path, typer.Argument(help="The file to import (.jsonl or .csv).")],
    *,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid",
        help="Import the valid lines and report the others (exit 6 if any was refused, "
             "3 if none was valid). Default: one bad line imports nothing (exit 3).")] = False,
    fmt: Annotated[FileFormat | None, typer.Option(
        "--format", help="jsonl or csv (default: from the file extension).")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the report as JSON (and no progress bar).")] = False,
) -> None:
    """Import contacts with their lists and consent history (docs/import-format.md).

    Every line is checked first; re-importing a file changes nothing. On a terminal a
    progress bar shows the rows, their rate and the time left."""
    _run(path, skip_invalid=skip_invalid, fmt=fmt, as_json=as_json)


@handle_errors
def _run(path: Path, *, skip_invalid: bool, fmt: FileFormat | None, as_json: bool) -> None:
    from syncd.cli.progress import progress_bar
    from syncd.crm.importer import import_file

    ctx = open_context()
    try:
        with progress_bar(err_console, enabled=not as_json and err_console.is_terminal,
                          unit="lines") as progress, _fewer_collections():
            report = import_file(ctx, path, fmt=None if fmt is None else fmt.value,
                                 skip_invalid=skip_invalid, progress=progress)
    finally:
        ctx.close()
    if as_json:
        out_console.print(json_dumps(report.as_dict()), markup=False)
    else:
        for error in report.errors:
            err_console.print(str(error), markup=False)
        if report.errors_not_shown:
            err_console.print(f"... and {report.errors_not_shown} more errors", markup=False)
        if report.applied:
            out_console.print(
                f"imported {report.valid} of {report.lines} lines: "
                f"{report.contacts_created} contacts created, {report.contacts_updated} "
                f"updated, {report.consents_added} consent events and "
                f"{report.memberships_added} list memberships added"
                + (f"; {report.invalid} lines refused" if report.invalid else ""))
        else:
            hint = "" if skip_invalid else " (fix them, or use --skip-invalid)"
            err_console.print(f"[bold red]error:[/] {report.invalid} of {report.lines} lines "
                              f"are invalid; nothing imported{hint}")
    if not report.applied:
        raise typer.Exit(int(ExitCode.INVALID_INPUT))
    if report.invalid:
        raise typer.Exit(int(ExitCode.PARTIAL))


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """This process's cyclic garbage collector, for the import only: the objects loaded so
    far frozen (never traversed again) and a collection every 10,000 allocations instead
    of 700. An import allocates millions of short-lived rows and records without cycles;
    the collections walked every live object, a tenth of its CPU. (50,000 saved no more
    and let cyclic garbage pile up: peak RSS +40 MB at 100k.) A command's process only:
    `syncd serve` keeps the interpreter's defaults."""
    kept = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*kept)
        gc.unfreeze()


def register(app: typer.Typer) -> None:
    app.command("import")(import_contacts)
