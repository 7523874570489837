"""The fingerprint of a sync target's configuration (its plan: purposes, basis, merge
fields, tag and group mappings, rules) and the one the audience was last synced with:
when they differ, every contact of the target is planned again (docs/architecture.md,
"Data flow")."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from syncd.config.targets import TargetSettings
from syncd.context import AppContext
from syncd.db import transaction
from syncd.store import cursors
from syncd.sync.plan import PlanConfig

# Settings of a target that change how often or how cautiously it runs, not what a
# member should look like: a change of these re-plans nobody.
_OPERATIONAL = {"name", "interval_minutes", "max_unsubscribe_share", "unsubscribe_floor"}


def fingerprint(target: TargetSettings, cfg: PlanConfig) -> str:
    """32 hex characters over the plan's configuration and the target's mapping fields."""
    document = {"plan": dataclasses.asdict(cfg),
                "target": target.model_dump(mode="json", exclude=_OPERATIONAL)}
    canonical = json.dumps(document, sort_keys=True, default=str)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def cursor_name(audience_id: str) -> str:
    return f"config:{audience_id}"


def last_synced(ctx: AppContext, audience_id: str) -> str | None:
    """The fingerprint of the last completed sync of the audience; None: never recorded."""
    with transaction(ctx.sessions) as session:
        return cursors.read_text(session, cursor_name(audience_id))


def changed(ctx: AppContext, audience_id: str, current: str) -> bool:
    """True when a fingerprint was recorded and differs (the first run after an upgrade
    records one and re-plans nobody: there is nothing to compare with)."""
    last = last_synced(ctx, audience_id)
    return last is not None and last != current


def record(ctx: AppContext, audience_id: str, current: str) -> None:
    with transaction(ctx.sessions) as session:
        cursors.write_text(session, cursor_name(audience_id), current)
