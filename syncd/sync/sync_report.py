"""A sync run's report (numbers, and for a dry run a few examples) and the tally that
counts planned changes and ESP outcomes into it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from syncd.clock import utcnow
from syncd.metrics import MEMBERS, WITHDRAWAL_LATENCY
from syncd.schema import PushOutcome
from syncd.sync.plan import Action, Change
from syncd.sync.push import Outcome
from syncd.sync.report import Report

MAX_EXAMPLES = 10
_PUSHED = (PushOutcome.ADDED, PushOutcome.RECONSENT, PushOutcome.UPDATED,
           PushOutcome.UNSUBSCRIBED, PushOutcome.ADOPTED)
# Enum members read once, here: on Python 3.11 every `Enum.MEMBER` in the code goes through
# the enum metaclass's __getattr__ hook (about a thousand instructions), and these are
# read for every contact a run pushes.
_SETTLE_OR_HOLD = (Action.SETTLE, Action.HOLD)
_FOREIGN, _MISSING = PushOutcome.FOREIGN, PushOutcome.MISSING
_UNCHANGED, _UNSUBSCRIBED = PushOutcome.UNCHANGED, PushOutcome.UNSUBSCRIBED


@dataclass(frozen=True)
class PlannedExample:
    """A dry-run example, for the operator's terminal only (it names the address)."""

    email: str
    action: str
    reason: str


@dataclass(frozen=True)
class SyncReport(Report):
    outcome: str  # a RunOutcome: succeeded | interrupted | refused | failed | dry_run
    audience_id: str
    target: str = "default"  # the sync target (settings [[targets]]) of the audience
    # Why every contact of the target was planned, settled or not: "configuration
    # changed" (the target's fingerprint moved), "full" (`--full`); None: only changes.
    replanned: str | None = None
    dry_run: bool = False
    considered: int = 0
    added: int = 0
    updated: int = 0
    unsubscribed: int = 0
    reconsent_pending: int = 0
    adopted: int = 0
    unchanged: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    parked: int = 0
    failed: int = 0
    write_calls: int = 0
    duration_seconds: float = 0.0
    planned_unsubscribes: int = 0
    known_members: int = 0  # counted only when the planned unsubscribes exceed the floor
    unsubscribe_limit: int = 0
    # Unsubscribes the safety limit held back this run (adds and updates still went).
    held_unsubscribes: int = 0
    # The first sync of an audience reads it whole first (syncd.sync.audience_pull).
    audience_pulled: bool = False
    error: str | None = None
    examples: tuple[PlannedExample, ...] = ()

    @property
    def partial(self) -> bool:
        return self.parked > 0 or self.failed > 0

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["skipped"] = dict(self.skipped)
        doc["examples"] = [asdict(e) for e in self.examples]
        return doc

    def counts(self) -> dict[str, Any]:
        """The numbers only (no addresses): for logs, sync_runs and metrics."""
        doc = self.to_dict()
        doc.pop("examples")
        return doc


class Tally:
    """A run's counts as it goes, turned into its SyncReport at the end."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.considered = 0
        self.examples: list[PlannedExample] = []
        # (outcome, reason) -> count; published once per run (a label lookup per contact
        # would cost more than the planning).
        self.metric: Counter[tuple[str, str]] = Counter()

    def publish(self) -> None:
        for (outcome, reason), count in self.metric.items():
            MEMBERS.labels(outcome=outcome, reason=reason).inc(count)
        self.metric.clear()

    def planned(self, change: Change, email: str, dry_run: bool) -> None:
        self.considered += 1
        if change.action in _SETTLE_OR_HOLD:
            if change.category == "unchanged":
                self.kinds[_UNCHANGED] += 1
            else:
                self.skipped[change.category] += 1
                self.metric["skipped", change.category] += 1
        if dry_run:
            kind = {Action.ADD: (PushOutcome.RECONSENT if change.status == "pending"
                                 else PushOutcome.ADDED),
                    Action.UPDATE: PushOutcome.UPDATED, Action.RECONSENT: PushOutcome.RECONSENT,
                    Action.UNSUBSCRIBE: PushOutcome.UNSUBSCRIBED}.get(change.action)
            if kind:
                self.kinds[kind] += 1
            if len(self.examples) < MAX_EXAMPLES and change.category != "unchanged":
                self.examples.append(PlannedExample(email, str(change.action), change.reason))

    def outcome(self, item: Outcome) -> None:
        if item.kind in (_FOREIGN, _MISSING):
            label = "foreign_member" if item.kind == _FOREIGN else "member_missing"
            self.skipped[label] += 1
            self.metric["skipped", label] += 1
            return
        if item.kind == _UNSUBSCRIBED and item.change.withdrawn_at is not None:
            WITHDRAWAL_LATENCY.observe(max(
                0.0, (utcnow() - item.change.withdrawn_at).total_seconds()))
        self.kinds[item.kind] += 1
        label = ("pushed" if item.kind in _PUSHED else item.kind)
        self.metric[label, item.change.category] += 1

    def report(self, outcome: str, audience_id: str, **extra: Any) -> SyncReport:
        k = self.kinds
        return SyncReport(
            outcome=outcome, audience_id=audience_id, considered=self.considered,
            added=k[PushOutcome.ADDED], updated=k[PushOutcome.UPDATED],
            unsubscribed=k[PushOutcome.UNSUBSCRIBED],
            reconsent_pending=k[PushOutcome.RECONSENT], adopted=k[PushOutcome.ADOPTED],
            unchanged=k[PushOutcome.UNCHANGED], skipped=dict(sorted(self.skipped.items())),
            parked=k[PushOutcome.PARKED], failed=k[PushOutcome.FAILED],
            examples=tuple(self.examples), **extra)
