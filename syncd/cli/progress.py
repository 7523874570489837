"""Progress bars on the terminal (rows, rate, time left), and log lines drawn above the
bar instead of through it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

# (done, total or 0 when not known yet, what is being done)
Update = Callable[[int, int, str], None]


class _Rate(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} {self.unit}/s" if speed else "", style="progress.data.speed")


class _AboveTheBar:
    """A stream for a logging handler: each line printed by the live console, so that it
    lands above the progress bar instead of inside it."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def write(self, text: str) -> int:
        if text.strip():
            self.console.print(Text.from_ansi(text.rstrip("\n")), soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


@contextmanager
def logs_above(console: Console) -> Iterator[None]:
    """While a bar is live, route the stream handlers of the root logger through it."""
    swapped: list[tuple[logging.StreamHandler[Any], Any]] = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            swapped.append((handler, handler.setStream(_AboveTheBar(console))))
    try:
        yield
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)


@contextmanager
def progress_bar(console: Console, *, enabled: bool, unit: str = "rows",
                 ) -> Iterator[Update | None]:
    """An `Update` drawing a bar on `console`, or None when not `enabled` (not a
    terminal, or --json: machine-readable output stays free of it)."""
    if not enabled:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  _Rate(unit), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                  console=console, transient=True) as bar, logs_above(bar.console):
        tasks: dict[str, TaskID] = {}

        def update(done: int, total: int, what: str) -> None:
            if what not in tasks:  # a new pass: its own bar, rate and time left
                for earlier in tasks.values():
                    bar.update(earlier, visible=False)
                tasks[what] = bar.add_task(what, total=None)
            bar.update(tasks[what], completed=done, total=total or None)

        yield update
