"""The demo's report: one result per step (its facts and checks), the whole run, and the
exit code it gives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncd.demo.checks import Check
from syncd.exit_codes import ExitCode


@dataclass
class StepResult:
    key: str
    title: str
    shows: str  # the rules this step shows, in a line
    facts: dict[str, Any]
    checks: list[Check]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.key, "title": self.title, "shows": self.shows, "ok": self.ok,
                "seconds": round(self.seconds, 3), "facts": self.facts,
                "checks": [c.as_dict() for c in self.checks]}


STEP_KEYS = ("import", "sync", "unsubscribe", "resync", "existing", "signup", "targets")


@dataclass
class DemoReport:
    directory: str = ""
    kept: bool = False
    ignored_environment: list[str] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.error is None and [s.key for s in self.steps] == list(STEP_KEYS)
                and all(s.ok for s in self.steps))

    def failed_checks(self) -> list[tuple[str, Check]]:
        return [(s.key, c) for s in self.steps for c in s.checks if not c.passed]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "error": self.error, "seconds": round(self.seconds, 3),
                "directory": self.directory, "kept": self.kept,
                "ignored_environment": self.ignored_environment,
                "steps": [s.as_dict() for s in self.steps],
                "failed_checks": [{"step": k, **c.as_dict()} for k, c in self.failed_checks()]}


def exit_code(report: DemoReport) -> ExitCode:
    """0 only when every step ran and every check passed."""
    return ExitCode.OK if report.ok else ExitCode.FAILED
