"""The demo's six steps, each through the code production runs, each checked against the
real state afterwards:

1. import the sample CRM (--skip-invalid semantics) -> who is eligible, and why;
2. sync -> who was pushed and who not, and why; the emulator's audience;
3. register the webhook at the running service, let Mailchimp (the emulator) send a real
   unsubscribe webhook over HTTP -> the purge, and how long it took;
4. re-sync -> the person who left is not re-added; with nothing changed, zero writes;
5. an audience that already had members -> the audit, a withdrawal reaching a pre-existing
   member, the re-consent of one who had left;
6. sign-up at the source -> the form, the mailed link, the button, the preference page.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests
from sqlalchemy import func, select

from mailchimp_emulator import RequestInfo, subscriber_hash
from syncd.clock import utcnow
from syncd.config import NEWSLETTER
from syncd.consent import ledger
from syncd.consent.policy import Action
from syncd.crm import inspect, store, suppression
from syncd.crm.importer import import_file
from syncd.demo import checks
from syncd.demo.cast import CAST, UNSUBSCRIBER, sample_path
from syncd.demo.checks import Check
from syncd.demo.stage import Stage
from syncd.exit_codes import ExitCode
from syncd.schema import ConsentEvent, Contact, PushState, WebhookEvent
from syncd.sync.run import run_sync
from syncd.webhooks import registration

PURGE_METRIC = "syncd_purge_latency_seconds"


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


STEP_KEYS = ("import", "sync", "unsubscribe", "resync", "existing", "signup")


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
    """Run the five steps; stop at the first step whose checks fail (later steps build on
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
            for step in (_import_step, _sync_step, _unsubscribe_step, _resync_step,
                         _existing_step, _signup_step):
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


# -- reading the state --------------------------------------------------------------


def _eligibility(stage: Stage) -> dict[str, checks.Eligibility]:
    with stage.ctx.sessions() as session:
        return {row.email.lower(): checks.Eligibility(row.eligible, row.standing, row.reason,
                                                      tuple(row.lists))
                for row in inspect.rows(session, stage.ctx.keyring, purpose=NEWSLETTER,
                                        now=utcnow())}


def _audience(stage: Stage) -> dict[str, checks.Member]:
    return {m["email_address"].lower(): checks.Member(
                status=m["status"],
                tags=tuple(sorted(t["name"] for t in m.get("tags") or [])),
                timestamp_opt=m.get("timestamp_opt") or "")
            for m in stage.emulator.members()}


def _contact(stage: Stage, email: str) -> Contact:
    with stage.ctx.sessions() as session:
        contact = store.find_contact(session, email)
        if contact is None:
            raise RuntimeError(f"the sample contact {email} is missing")
        session.expunge(contact)
        return contact


# -- step 1 ---------------------------------------------------------------------------


def _import_step(stage: Stage) -> StepResult:
    path = sample_path()
    report = import_file(stage.ctx, path, skip_invalid=True)
    line_of = {json.loads(line)["email"].lower(): number
               for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1)
               if line.strip()}
    contacts = _eligibility(stage)
    with stage.ctx.sessions() as session:
        events = {str(email): int(count) for email, count in session.execute(
            select(Contact.email_key, func.count(ConsentEvent.id))
            .join(ConsentEvent, ConsentEvent.contact_id == Contact.id)
            .group_by(Contact.email_key))}
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


# -- step 2 ---------------------------------------------------------------------------


def _parked(stage: Stage) -> dict[str, str]:
    with stage.ctx.sessions() as session:
        rows = session.execute(
            select(Contact.email_key, PushState.parked_reason)
            .join(PushState, PushState.contact_id == Contact.id)
            .where(PushState.parked_reason.is_not(None)))
        return {str(email): str(reason or "") for email, reason in rows}


def _sync_step(stage: Stage) -> StepResult:
    result = run_sync(stage.ctx)
    audience = _audience(stage)
    parked = _parked(stage)
    eligibility = _eligibility(stage)
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


# -- step 3 ---------------------------------------------------------------------------


def _purge_metric(stage: Stage) -> tuple[float, float] | None:
    """(sum, count) of the service's purge latency histogram, read from its /metrics."""
    try:
        text = requests.get(stage.service.base_url + "/metrics", timeout=5).text
    except requests.RequestException:
        return None
    found: dict[str, float] = {}
    for name in ("sum", "count"):
        match = re.search(rf"^{PURGE_METRIC}_{name} ([0-9.eE+-]+)$", text, re.MULTILINE)
        if match is None:
            return None
        found[name] = float(match.group(1))
    return found["sum"], found["count"]


def _unsubscribe_step(stage: Stage) -> StepResult:
    from syncd.esp.mailchimp import mailchimp_client

    secrets = [s.get_secret_value() for s in stage.settings.webhook_secrets]
    client = mailchimp_client(stage.settings)
    try:
        done = registration.register(client, stage.webhook_url, secrets)
        hooks = client.list_webhooks()
    finally:
        client.close()
    ours = [h for h in hooks if h.url == stage.webhook_url]
    person = UNSUBSCRIBER.email
    contact = _contact(stage, person)
    with stage.ctx.sessions() as session:
        before = tuple(store.list_names(session, contact.id))
    metric_before = _purge_metric(stage)
    began = time.perf_counter()
    deliveries = stage.emulator.fire_unsubscribe(person, reason="manual")
    seconds = time.perf_counter() - began
    metric_after = _purge_metric(stage)
    server_seconds = None
    if metric_before and metric_after and metric_after[1] - metric_before[1] == 1:
        server_seconds = metric_after[0] - metric_before[0]
    address_hmac = stage.ctx.keyring.address_hmac(contact.email_key)
    with stage.ctx.sessions() as session:
        after = tuple(store.list_names(session, contact.id))
        blocks = suppression.facts_by_hmac(session, [address_hmac]).get(address_hmac, [])
        withdrawn = any(e.action == Action.WITHDRAWN and e.source == "esp_webhook"
                        for e in ledger.history(session, contact.id))
        inbox_status = session.scalar(
            select(WebhookEvent.status)
            .where(WebhookEvent.address_hmac == address_hmac,
                   WebhookEvent.kind == "unsubscribe")
            .order_by(WebhookEvent.id.desc()).limit(1))
    eligible_after = _eligibility(stage)[person]
    member = stage.emulator.member(person)
    state = checks.PurgeState(
        registered=bool(ours), validated=stage.emulator.audience.rules.validate_webhook_urls
        and bool(ours), api_source_off=bool(ours) and not ours[0].sources.get("api"),
        deliveries=[d.status for d in deliveries], lists_before=before, lists_after=after,
        suppressions=[(b.purpose, b.reason) for b in blocks], withdrawal_recorded=withdrawn,
        inbox_status=inbox_status, esp_status=member["status"] if member else None,
        eligible_after=eligible_after.eligible, seconds_to_2xx=seconds,
        server_purge_seconds=server_seconds)
    return StepResult(
        "unsubscribe", "Unsubscribe at Mailchimp: the webhook purges at once",
        "rule 5 and I3: withdrawal takes effect at once, in the transaction that stores the "
        "webhook, before the 2xx",
        {"webhook": {"url": registration.masked_url(stage.webhook_url),
                     "created": done.created,
                     "events": sorted(k for k, v in done.webhook.events.items() if v),
                     "sources": sorted(k for k, v in done.webhook.sources.items() if v)},
         "person": person, "http_status": [d.status for d in deliveries],
         "lists_before": list(before), "lists_after": list(after),
         "suppressions": [{"purpose": b.purpose, "reason": b.reason} for b in blocks],
         "standing_after": eligible_after.standing, "reason_after": eligible_after.reason,
         "mailchimp_status": state.esp_status,
         "ms_send_to_2xx": round(seconds * 1000, 1),
         "ms_server_purge": None if server_seconds is None else round(server_seconds * 1000, 2)},
        checks.check_purge(state))


# -- step 4 ---------------------------------------------------------------------------


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


def _resync_step(stage: Stage) -> StepResult:
    emulator = stage.emulator
    writes = _WriteLog(UNSUBSCRIBER.email)
    emulator.set_hook(writes, match=r"^(PUT|PATCH|POST|DELETE) ")
    try:
        first = run_sync(stage.ctx)
    finally:
        emulator.clear_faults()
    member = emulator.member(UNSUBSCRIBER.email)
    audience = _audience(stage)
    before = emulator.stats.write_calls
    second = run_sync(stage.ctx)
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


# -- step 5 ---------------------------------------------------------------------------


def _existing_step(stage: Stage) -> StepResult:
    from syncd.demo.existing_step import existing_audience_step

    key, title, shows, facts, found = existing_audience_step(stage)
    return StepResult(key, title, shows, facts, found)


# -- step 6 ---------------------------------------------------------------------------


def _signup_step(stage: Stage) -> StepResult:
    from syncd.demo.signup_step import check_signup, run_signup

    state, facts = run_signup(stage)
    return StepResult(
        "signup", "Sign-up at the source: form, confirmation mail, button, preference page",
        "rules 2, 3, 5, 10: a free choice on the form, syncd's own double opt-in (a GET never "
        "confirms), withdrawal as easy as giving", facts, check_signup(state))
