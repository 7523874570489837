"""What the status page shows, read from the database alone (so every replica answers alike),
with no personal data: contacts are named by id, and any address in an error text is
replaced by "<address>". The JSON of /status.json is this document ("syncd-status/1").

Alert conditions are computed here too, so the page, the JSON and the alert webhook agree:
a sync that failed twice in a row, withdrawals held, inbox events parked, an inbox stuck."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.config import Settings
from syncd.context import AppContext
from syncd.logs import Redactor, redactor
from syncd.store import candidates, ledger, status
from syncd.sync.audience_audit import AUDIT_RUN_KIND
from syncd.sync.held import held_now

STATUS_SCHEMA = "syncd-status/1"
RECENT_RUNS = 5
LISTED = 50  # parked contacts and events listed by id; the counts are whole
SUCCESS = ("succeeded", "partial")
UNSETTLED = ("received", "failed")


def _scrub(text: str | None) -> str | None:
    if text is None:
        return None
    # No keyring: an address becomes "<address>", not a pseudonym the page would expose.
    return Redactor(keyring=None, secrets=redactor().secrets).scrub_text(text)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _age_minutes(now: datetime, moment: datetime | None) -> float | None:
    return None if moment is None else round((now - moment).total_seconds() / 60, 1)


def _runs(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Per kind and audience: the last runs, newest first, and the failures in a row."""
    last_ok = status.last_success_by_kind(session, SUCCESS)
    found = []
    for target in status.recent_runs(session, RECENT_RUNS):
        failures = 0
        for run in target.runs:
            if run.outcome != "failed":
                break
            failures += 1
        ok_at = last_ok.get(target.kind)
        found.append({
            "kind": target.kind, "audience_id": target.audience_id,
            "failures_in_a_row": failures,
            "last_success_at": _iso(ok_at), "last_success_age_minutes":
                _age_minutes(now, ok_at),
            "runs": [{"id": r.id, "outcome": r.outcome, "started_at": _iso(r.started_at),
                      "finished_at": _iso(r.finished_at),
                      "counts": {k: v for k, v in r.counts.items()
                                 if isinstance(v, int | float) and not isinstance(v, bool)},
                      "error": _scrub(r.error)} for r in target.runs]})
    return found


def _held_withdrawals(session: Session, settings: Settings) -> dict[str, Any]:
    """Unsubscribes the safety limit holds back now (the same count as /readyz and the
    `syncd_sync_unsubscribes_held` gauge), until `syncd sync --force` releases them."""
    held = held_now(session, tuple(t.audience_id for t in settings.sync_targets))
    return {"count": held.unsubscribes, "since": _iso(held.since), "release": (
        held.detail()["release"] if held.unsubscribes else None)}


def _last_audit(session: Session) -> dict[str, Any] | None:
    run = status.last_run(session, AUDIT_RUN_KIND)
    if run is None:
        return None
    return {"at": _iso(run.finished_at), "outcome": run.outcome, **run.counts}


def _parked_contacts(session: Session) -> dict[str, Any]:
    total, rows = status.parked_contacts(session, LISTED)
    return {"count": total, "listed": [
        {"contact_id": p.contact_id, "audience_id": p.audience_id, "reason": _scrub(p.reason),
         "since": _iso(p.since)} for p in rows]}


def _inbox(session: Session, now: datetime, stuck_after: timedelta) -> dict[str, Any]:
    by_status = status.inbox_by_status(session)
    oldest = status.oldest_received(session, UNSETTLED)
    parked = status.events_in(session, "parked", LISTED)
    last_webhook = status.last_received(session, "webhook")
    backlog = sum(by_status.get(s, 0) for s in UNSETTLED)
    return {
        "by_status": dict(sorted(by_status.items())),
        "backlog": backlog, "oldest_unsettled_at": _iso(oldest),
        "oldest_unsettled_age_minutes": _age_minutes(now, oldest),
        "stuck": oldest is not None and now - oldest > stuck_after,
        "parked": [{"id": e.id, "kind": e.kind, "received_at": _iso(e.received_at),
                    "attempts": e.attempts, "last_error": _scrub(e.last_error)}
                   for e in parked],
        "parked_count": by_status.get("parked", 0),
        "last_webhook_at": _iso(last_webhook),
        "last_webhook_age_minutes": _age_minutes(now, last_webhook),
    }


def _outbox(session: Session, audience: str | None) -> dict[str, Any]:
    """Contacts whose newest revision the ESP has not settled yet (the next sync's work)."""
    if audience is None:
        return {"audience_id": None, "backlog": None}
    return {"audience_id": audience, "backlog": candidates.backlog(session, audience)}


def alerts(doc: dict[str, Any]) -> list[dict[str, str]]:
    """The alert conditions that hold now, each with a stable key and a sentence."""
    found = []
    for target in doc["runs"]:
        if target["kind"] == "sync" and target["failures_in_a_row"] >= 2:
            found.append({"key": f"sync_failed_twice:{target['audience_id']}",
                          "message": f"the sync of audience {target['audience_id']} failed "
                                     f"{target['failures_in_a_row']} times in a row"})
    held = doc["held_withdrawals"]["count"]
    if held:
        found.append({"key": "withdrawals_held", "message": f"{held} withdrawal(s) held: the "
                      "safety limit refused the sync; check the CRM data, then sync with "
                      "--force if intended"})
    if doc["inbox"]["parked_count"]:
        found.append({"key": "events_parked", "message": f"{doc['inbox']['parked_count']} "
                      "webhook event(s) parked: they need an operator"})
    if doc["inbox"]["stuck"]:
        found.append({"key": "inbox_stuck", "message": "the inbox is stuck: an event waits "
                      f"since {doc['inbox']['oldest_unsettled_at']}"})
    return found


def collect(ctx: AppContext, *, now: datetime | None = None,
            alerts_only: bool = False) -> dict[str, Any]:
    """The status document. `alerts_only`: just what the alert conditions need (the
    check after every job skips the whole-table counts: outbox, re-permission)."""
    from syncd.consent.lifecycle import repermission_due

    moment = now or utcnow()
    settings = ctx.settings
    with ctx.sessions() as session:
        runs = _runs(session, moment)
        if alerts_only:
            brief: dict[str, Any] = {
                "runs": runs, "held_withdrawals": _held_withdrawals(session, settings),
                "inbox": _inbox(session, moment,
                                timedelta(minutes=settings.alert_inbox_stuck_minutes))}
            return brief | {"alerts": alerts(brief)}
        last_reconcile = status.last_success_by_kind(session, SUCCESS).get("reconcile")
        head = ledger.head(session)
        tombstones = status.tombstone_count(session)
        doc: dict[str, Any] = {
            "schema": STATUS_SCHEMA, "generated_at": _iso(moment),
            "runs": runs,
            "held_withdrawals": _held_withdrawals(session, settings),
            "parked_contacts": _parked_contacts(session),
            "inbox": _inbox(session, moment,
                            timedelta(minutes=settings.alert_inbox_stuck_minutes)),
            "outbox": _outbox(session, settings.mailchimp_audience_id),
            "reconciliation": {"last_success_at": _iso(last_reconcile),
                               "age_minutes": _age_minutes(moment, last_reconcile)},
            "ledger": {"head_seq": head.seq, "head_hash": head.hash,
                       "head_moved_at": _iso(head.updated_at), "tombstones": tombstones},
            "repermission": repermission_due(session, settings, now=moment).summary(),
            # The last audience audit's findings (counts per class), if one ran.
            "audit": _last_audit(session),
        }
    doc["alerts"] = alerts(doc)
    return doc
