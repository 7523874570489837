"""The record of every run (table sync_runs): started, then finished with its outcome and
counts (numbers only, never an address); and the latest finished sync's counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.schema import RunKind, RunOutcome, SyncRun

_TABLE = cast(Table, SyncRun.__table__)
ERROR_LIMIT = 1000


def start(session: Session, *, kind: RunKind, audience_id: str | None,
          started_at: datetime | None = None) -> int:
    """A run that is `running`; returns its id."""
    return int(session.connection().execute(_TABLE.insert().returning(_TABLE.c.id), {
        "kind": str(kind), "audience_id": audience_id, "started_at": started_at or utcnow(),
        "outcome": str(RunOutcome.RUNNING), "counts": {}}).scalar_one())


def finish(session: Session, run_id: int, *, outcome: str, counts: dict[str, Any],
           error: str | None = None) -> None:
    session.connection().execute(_TABLE.update().where(_TABLE.c.id == run_id).values(
        finished_at=utcnow(), outcome=outcome, counts=counts,
        error=error[:ERROR_LIMIT] if error else None))


def record(session: Session, *, kind: RunKind, audience_id: str | None, moment: datetime,
           outcome: str, counts: dict[str, Any]) -> None:
    """A run that started and finished at `moment` (the audience audit)."""
    session.connection().execute(_TABLE.insert(), {
        "kind": str(kind), "audience_id": audience_id, "started_at": moment,
        "finished_at": moment, "outcome": outcome, "counts": counts})


@dataclass(frozen=True)
class FinishedRun:
    counts: dict[str, Any]
    finished_at: datetime


def latest_finished(session: Session, kind: RunKind,
                    audience_id: str | None = None) -> FinishedRun | None:
    """The newest finished run of `kind` that did not fail (of one audience, if given)."""
    query = (select(_TABLE.c.counts, _TABLE.c.finished_at)
             .where(_TABLE.c.kind == str(kind), _TABLE.c.finished_at.is_not(None),
                    _TABLE.c.outcome != str(RunOutcome.FAILED)))
    if audience_id is not None:
        query = query.where(_TABLE.c.audience_id == audience_id)
    row = session.connection().execute(
        query.order_by(_TABLE.c.finished_at.desc(), _TABLE.c.id.desc()).limit(1)).first()
    return None if row is None else FinishedRun(dict(row[0] or {}), row[1])
