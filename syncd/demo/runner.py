"""Running the demo: its seven steps in order, each through the code production runs, each
checked against the real state afterwards:

1. import the sample CRM (--skip-invalid semantics) -> who is eligible, and why;
2. sync -> who was pushed and who not, and why; the emulator's audience;
3. register the webhook at the running service, let Mailchimp (the emulator) send a real
   unsubscribe webhook over HTTP -> the purge, and how long it took;
4. re-sync -> the person who left is not re-added; with nothing changed, zero writes;
5. an audience that already had members -> the audit, a withdrawal reaching a pre-existing
   member, the re-consent of one who had left;
6. sign-up at the source -> the form, the mailed link, the button, the preference page;
7. two targets -> offers synced on the soft opt-in basis beside the newsletter, both
   audiences read back over HTTP: who is where, the GDPR permission, the category tag.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from syncd.demo.import_sync_steps import import_step, sync_step
from syncd.demo.offers_step import targets_step
from syncd.demo.report import DemoReport, StepResult
from syncd.demo.resync_step import resync_step
from syncd.demo.stage import Stage
from syncd.demo.unsubscribe_step import unsubscribe_step


class Observer(Protocol):
    def stage_ready(self, stage: Stage) -> None: ...
    def step_done(self, result: StepResult) -> None: ...


class _Silent:
    def stage_ready(self, stage: Stage) -> None:
        pass

    def step_done(self, result: StepResult) -> None:
        pass


def run_demo(*, directory: Path | None = None, observer: Observer | None = None,
             prepare: Callable[[Stage], None] | None = None) -> DemoReport:
    """Run the seven steps; stop at the first step whose checks fail (later steps build on
    it). `prepare` runs once the stage is up, before step 1 (tests use it to break an
    expectation). Errors other than ConfigError end up in `report.error`."""
    watcher = observer or _Silent()
    report = DemoReport()
    started = time.monotonic()
    try:
        with Stage(directory) as stage:
            report.directory, report.kept = str(stage.directory), stage.kept
            report.ignored_environment = stage.ignored_environment
            watcher.stage_ready(stage)
            if prepare is not None:
                prepare(stage)
            for step in (import_step, sync_step, unsubscribe_step, resync_step,
                         _existing_step, _signup_step, targets_step):
                began = time.monotonic()
                result = step(stage)
                result.seconds = time.monotonic() - began
                report.steps.append(result)
                watcher.step_done(result)
                if not result.ok:
                    break
    except Exception as exc:
        from syncd.errors import ConfigError

        if isinstance(exc, ConfigError):
            raise
        from syncd.logs import redactor

        report.error = redactor().scrub_text(f"{type(exc).__name__}: {exc}")
    report.seconds = time.monotonic() - started
    return report


def _existing_step(stage: Stage) -> StepResult:
    from syncd.demo.existing_step import existing_audience_step

    key, title, shows, facts, found = existing_audience_step(stage)
    return StepResult(key, title, shows, facts, found)


def _signup_step(stage: Stage) -> StepResult:
    from syncd.demo.signup_step import check_signup, run_signup

    state, facts = run_signup(stage)
    return StepResult(
        "signup", "Sign-up at the source: form, confirmation mail, button, preference page",
        "rules 2, 3, 5, 10: a free choice on the form, syncd's own double opt-in (a GET never "
        "confirms), withdrawal as easy as giving", facts, check_signup(state))
