"""What the safety limit holds back now: the unsubscribes of the latest finished sync
run, for /readyz, the metrics and the operator (I11: held visibly, until `--force`), and
the refusal that tells the operator why, naming the target's own settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from syncd.config import Settings
from syncd.config.targets import TargetSettings
from syncd.schema import RunKind
from syncd.store import runs


@dataclass(frozen=True)
class Held:
    unsubscribes: int
    since: datetime | None  # when the latest run that held them finished

    def detail(self) -> dict[str, object]:
        return {"unsubscribes_held": self.unsubscribes,
                "since": self.since.isoformat() if self.since else None,
                "release": "check the CRM data, then `syncd sync --force`"}


def held_now(session: Session, audience_ids: Sequence[str] = ()) -> Held:
    """Counts only, never an address. `audience_ids`: the sync targets' audiences, each
    by its own latest run, added up (none given: the latest sync run of any audience)."""
    found = [_held(runs.latest_finished(session, RunKind.SYNC, audience))
             for audience in audience_ids or (None,)]
    moments = [h.since for h in found if h.since is not None]
    return Held(sum(h.unsubscribes for h in found), max(moments, default=None))


def held_by_audience(session: Session, audience_ids: Sequence[str]) -> dict[str, Held]:
    """What each audience's latest sync run held (the per-audience gauge)."""
    return {audience: _held(runs.latest_finished(session, RunKind.SYNC, audience))
            for audience in audience_ids}


def _held(run: runs.FinishedRun | None) -> Held:
    if run is None:
        return Held(0, None)
    held = int(run.counts.get("held_unsubscribes") or 0)
    return Held(held, run.finished_at if held else None)


NOTHING_HELD = Held(0, None)


def refusal_message(planned: int, known: int, target: TargetSettings,
                    settings: Settings) -> str:
    share = target.max_unsubscribe_share
    return (f"refused: the plan would unsubscribe {planned} of the {known} members syncd "
            f"knows at Mailchimp, more than {settings.target_setting(target, 'unsubscribe_floor')}"
            f" = {target.unsubscribe_floor} and more than "
            f"{settings.target_setting(target, 'max_unsubscribe_share')} = {share:.0%} "
            f"({int(known * share)}) of target {target.name}; adds and updates were sent, "
            "the unsubscribes are held: check the CRM data, then run with --force if intended")
