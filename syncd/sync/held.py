"""What the safety limit holds back now: the unsubscribes of the latest finished sync
run, for /readyz, the metrics and the operator (I11: held visibly, until `--force`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from syncd.schema import SyncRun


@dataclass(frozen=True)
class Held:
    unsubscribes: int
    since: datetime | None  # when the latest run that held them finished

    def detail(self) -> dict[str, object]:
        return {"unsubscribes_held": self.unsubscribes,
                "since": self.since.isoformat() if self.since else None,
                "release": "check the CRM data, then `syncd sync --force`"}


def held_now(session: Session) -> Held:
    """Counts only, never an address."""
    row = session.execute(
        select(SyncRun.counts, SyncRun.finished_at)
        .where(SyncRun.kind == "sync", SyncRun.finished_at.is_not(None),
               SyncRun.outcome != "failed")
        .order_by(SyncRun.finished_at.desc(), SyncRun.id.desc()).limit(1)).first()
    if row is None:
        return Held(0, None)
    counts, finished = row
    held = int((counts or {}).get("held_unsubscribes") or 0)
    return Held(held, finished if held else None)


NOTHING_HELD = Held(0, None)
