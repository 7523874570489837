"""The import's confirmation check: a `confirmed` consent must confirm a valid sign-up (a
`given` of the same purpose at or before it) on its line, on another valid line of the
file, or already in the ledger; otherwise its line is refused (rule 4)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from syncd.clock import as_utc
from syncd.context import AppContext
from syncd.crm.import_format import ImportRecord, LineError
from syncd.store import facts

# Rounds of the check: a refused line's sign-ups no longer count, which can leave
# another line's confirmation without one (a chain; real files have none).
MAX_CONFIRMATION_ROUNDS = 5


class Refusals(Protocol):
    """What the check updates of the import's report."""

    valid: int
    refused_lines: set[int]

    def note(self, errors: list[LineError]) -> None: ...


@dataclass(frozen=True)
class Confirmation:
    """A `confirmed` consent whose own line holds no sign-up for it."""

    line: int
    index: int
    key: str
    purpose: str
    at: datetime


def unconfirmed_sign_ups(record: ImportRecord) -> list[Confirmation]:
    earliest: dict[str, datetime] = {}
    for consent in record.data.consents:
        if consent.action == "given" and (consent.purpose not in earliest
                                          or consent.at < earliest[consent.purpose]):
            earliest[consent.purpose] = consent.at
    return [Confirmation(record.line, index, record.address.key, consent.purpose, consent.at)
            for index, consent in enumerate(record.data.consents)
            if consent.action == "confirmed"
            and not (consent.purpose in earliest and earliest[consent.purpose] <= consent.at)]


def refuse_unsupported(
        ctx: AppContext, pending: list[Confirmation], report: Refusals,
        records: Callable[[], Iterator[ImportRecord]]) -> None:
    """Refuse the lines whose confirmation has no sign-up at or before it in the file's
    valid lines or the ledger."""
    for _round in range(MAX_CONFIRMATION_ROUNDS):
        pending = [c for c in pending if c.line not in report.refused_lines]
        if not pending:
            return
        wanted = {(c.key, c.purpose) for c in pending}
        with ctx.sessions() as session:
            earliest = facts.earliest_sign_ups(session, wanted)
        for record in records():
            if record.line in report.refused_lines:
                continue
            for consent in record.data.consents:
                key = (record.address.key, consent.purpose)
                if consent.action == "given" and key in wanted and (
                        key not in earliest or consent.at < earliest[key]):
                    earliest[key] = consent.at
        refused: dict[int, list[LineError]] = {}
        for c in pending:
            found = earliest.get((c.key, c.purpose))
            if found is None or as_utc(found) > c.at:
                refused.setdefault(c.line, []).append(LineError(
                    c.line, f"consents[{c.index}]",
                    f"a confirmation must confirm a valid sign-up: no 'given' for purpose "
                    f"{c.purpose!r} at or before it, in this file or the database"))
        if not refused:
            return
        for line, errors in sorted(refused.items()):
            report.valid -= 1
            report.note(errors)
            report.refused_lines.add(line)
