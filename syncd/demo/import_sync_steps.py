"""Steps 1 and 2 of the demo: import the sample CRM (who is eligible, and why), then the
first sync (who was pushed and who not, and why)."""

from __future__ import annotations

import json

from syncd.crm.importer import import_file
from syncd.demo import checks, readings
from syncd.demo.cast import CAST, SAMPLE_NAME, sample_text
from syncd.demo.report import StepResult
from syncd.demo.stage import Stage
from syncd.sync.run import run_sync


def import_step(stage: Stage) -> StepResult:
    # The shipped sample with its purchases dated relative to the demo's clock, written
    # into the stage's directory (kept with --dir: what was imported can be read there).
    path = stage.directory / SAMPLE_NAME
    path.write_text(sample_text(stage.clock().date()), encoding="utf-8")
    report = import_file(stage.ctx, path, skip_invalid=True, now=stage.clock())
    line_of = {json.loads(line)["email"].lower(): number
               for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1)
               if line.strip()}
    contacts = readings.eligibility(stage)
    events = readings.consent_events(stage)
    state = checks.ImportState(
        applied=report.applied, lines=report.lines, valid=report.valid,
        invalid=report.invalid,
        errors=[(e.line, e.field, e.message) for e in report.errors],
        line_of=line_of, contacts=contacts, consent_events=events)
    people = []
    for example in CAST:
        found = contacts.get(example.email)
        people.append({"email": example.email, "who": example.role, "rule": example.rule,
                       "law": example.law,
                       "eligible": found.eligible if found else False,
                       "standing": found.standing if found else "refused at import",
                       "reason": found.reason if found else "not stored",
                       "lists": list(found.lists) if found else []})
    return StepResult(
        "import", "Import the CRM: who may get the newsletter, and why",
        "rules 1, 2, 3, 5, 7: one consent per purpose, no pre-ticked boxes, double opt-in, "
        "withdrawal wins, soft opt-in is not consent",
        {"file": path.name, "lines": report.lines, "imported": report.valid,
         "refused": [{"line": e.line, "field": e.field, "message": e.message}
                     for e in report.errors],
         "people": people},
        checks.check_import(state))


def sync_step(stage: Stage) -> StepResult:
    result = run_sync(stage.ctx, target=stage.newsletter)
    audience = readings.audience(stage)
    parked = readings.parked(stage)
    eligibility = readings.eligibility(stage)
    state = checks.SyncState(report=result.to_dict(), audience=audience, parked=parked)
    people = []
    for example in CAST:
        member = audience.get(example.email)
        found = eligibility.get(example.email)
        if member is not None:
            outcome, why = f"pushed ({member.status})", found.reason if found else ""
        elif example.email in parked:
            outcome, why = "parked", f"Mailchimp refused it: {parked[example.email]}"
        elif found is None:
            outcome, why = "not pushed", "refused at import (pre-ticked box)"
        else:
            outcome, why = "not pushed", found.reason
        people.append({"email": example.email, "outcome": outcome, "why": why})
    counts = {k: result.to_dict()[k] for k in ("outcome", "added", "parked", "failed",
                                               "unchanged", "skipped", "write_calls")}
    return StepResult(
        "sync", "Sync: push only confirmed consent to Mailchimp",
        "rule 3 and I1: only a confirmed newsletter consent reaches the audience; "
        "Mailchimp's refusals are parked with its reason",
        {"run": counts, "people": people,
         "audience": [{"email": e, "status": m.status, "tags": list(m.tags),
                       "timestamp_opt": m.timestamp_opt} for e, m in sorted(audience.items())]},
        checks.check_first_sync(state))
