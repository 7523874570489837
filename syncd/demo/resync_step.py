"""Step 4 of the demo: the re-sync, watching every write the emulator receives: the person
who left is not re-added, and a run with nothing to do writes nothing."""

from __future__ import annotations

import re
import threading
from typing import Any

from mailchimp_emulator import RequestInfo, subscriber_hash
from syncd.demo import checks, readings
from syncd.demo.cast import UNSUBSCRIBER
from syncd.demo.report import StepResult
from syncd.demo.stage import Stage
from syncd.sync.run import run_sync


class _WriteLog:
    """Every write the emulator receives (a hook runs before it is handled)."""

    def __init__(self, person: str) -> None:
        self.person = person.lower()
        self.hash = subscriber_hash(person)
        self.kinds: dict[str, int] = {}
        self.resubscribes = 0
        self._lock = threading.Lock()

    def __call__(self, info: RequestInfo) -> None:
        body = info.body if isinstance(info.body, dict) else {}
        members = body.get("members")
        items: list[Any] = members if isinstance(members, list) else [body]
        with self._lock:
            key = f"{info.method} {re.sub(r'/[0-9a-f]{32}', '/{hash}', info.path)}"
            self.kinds[key] = self.kinds.get(key, 0) + 1
            for item in items:
                if not isinstance(item, dict):
                    continue
                mine = (str(item.get("email_address", "")).lower() == self.person
                        or self.hash in info.path)
                statuses = {item.get("status"), item.get("status_if_new")}
                if mine and statuses & {"subscribed", "pending"}:
                    self.resubscribes += 1


def resync_step(stage: Stage) -> StepResult:
    emulator = stage.emulator
    writes = _WriteLog(UNSUBSCRIBER.email)
    emulator.set_hook(writes, match=r"^(PUT|PATCH|POST|DELETE) ")
    try:
        first = run_sync(stage.ctx, target=stage.newsletter)
    finally:
        emulator.clear_faults()
    member = emulator.member(UNSUBSCRIBER.email)
    audience = readings.audience(stage)
    before = emulator.stats.write_calls
    second = run_sync(stage.ctx, target=stage.newsletter)
    second_writes = emulator.stats.write_calls - before
    state = checks.ResyncState(
        first=first.to_dict(), resubscribe_writes=writes.resubscribes,
        esp_status_after=member["status"] if member else None, audience_after=audience,
        second=second.to_dict(), second_esp_writes=second_writes, writes_first=writes.kinds)
    return StepResult(
        "resync", "Re-sync: the person who left stays out",
        "rule 6 and I2: never re-subscribed without a fresh confirmed consent; "
        "I5: a run with nothing to do writes nothing",
        {"first": {"outcome": first.outcome, "added": first.added,
                   "unsubscribed": first.unsubscribed, "write_calls": first.write_calls,
                   "writes": writes.kinds},
         "second": {"outcome": second.outcome, "write_calls": second.write_calls,
                    "mailchimp_writes": second_writes},
         "audience": [{"email": e, "status": m.status, "tags": list(m.tags)}
                      for e, m in sorted(audience.items())]},
        checks.check_resync(state))
