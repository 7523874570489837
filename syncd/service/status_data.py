"""What the status page shows, read from the database alone (so every replica answers alike),
with no personal data: contacts are named by id, and any address in an error text is
replaced by "<address>". The JSON of /status.json is this document ("syncd-status/1").

Alert conditions are computed here too, so the page, the JSON and the alert webhook agree:
a sync that failed twice in a row, withdrawals held, inbox events parked, an inbox stuck."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.consent import chain
from syncd.context import AppContext
from syncd.logs import Redactor, redactor
from syncd.schema import Contact, LedgerTombstone, PushState, SyncRun, WebhookEvent
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
    targets = session.execute(select(SyncRun.kind, SyncRun.audience_id).distinct()
                              .order_by(SyncRun.kind, SyncRun.audience_id)).all()
    found = []
    for kind, audience in targets:
        rows = list(session.scalars(
            select(SyncRun).where(SyncRun.kind == kind, SyncRun.audience_id == audience
                                  if audience is not None else SyncRun.audience_id.is_(None))
            .order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(RECENT_RUNS)))
        failures = 0
        for row in rows:
            if row.outcome != "failed":
                break
            failures += 1
        last_ok = session.scalar(select(func.max(SyncRun.finished_at)).where(
            SyncRun.kind == kind, SyncRun.outcome.in_(SUCCESS)))
        found.append({
            "kind": kind, "audience_id": audience, "failures_in_a_row": failures,
            "last_success_at": _iso(last_ok), "last_success_age_minutes":
                _age_minutes(now, last_ok),
            "runs": [{"id": r.id, "outcome": r.outcome, "started_at": _iso(r.started_at),
                      "finished_at": _iso(r.finished_at),
                      "counts": {k: v for k, v in (r.counts or {}).items()
                                 if isinstance(v, int | float) and not isinstance(v, bool)},
                      "error": _scrub(r.error)} for r in rows]})
    return found


def _held_withdrawals(session: Session) -> dict[str, Any]:
    """Unsubscribes the safety limit holds back now (the same count as /readyz and the
    `syncd_sync_unsubscribes_held` gauge), until `syncd sync --force` releases them."""
    held = held_now(session)
    return {"count": held.unsubscribes, "since": _iso(held.since), "release": (
        held.detail()["release"] if held.unsubscribes else None)}


def _last_audit(session: Session) -> dict[str, Any] | None:
    row = session.execute(select(SyncRun.finished_at, SyncRun.outcome, SyncRun.counts)
                          .where(SyncRun.kind == AUDIT_RUN_KIND)
                          .order_by(SyncRun.id.desc()).limit(1)).first()
    if row is None:
        return None
    at, outcome, counts = row
    return {"at": _iso(at), "outcome": outcome, **(counts or {})}


def _parked_contacts(session: Session) -> dict[str, Any]:
    parked = PushState.parked_reason.is_not(None)
    total = session.scalar(select(func.count()).select_from(PushState).where(parked)) or 0
    rows = session.execute(select(PushState.contact_id, PushState.audience_id,
                                  PushState.parked_reason, PushState.updated_at)
                           .where(parked).order_by(PushState.updated_at.desc())
                           .limit(LISTED)).all()
    return {"count": int(total), "listed": [
        {"contact_id": c, "audience_id": a, "reason": _scrub(reason), "since": _iso(at)}
        for c, a, reason, at in rows]}


def _inbox(session: Session, now: datetime, stuck_after: timedelta) -> dict[str, Any]:
    by_status = dict(session.execute(select(WebhookEvent.status, func.count())
                                     .group_by(WebhookEvent.status)).all())
    oldest = session.scalar(select(func.min(WebhookEvent.received_at))
                            .where(WebhookEvent.status.in_(UNSETTLED)))
    parked = session.execute(select(WebhookEvent.id, WebhookEvent.kind, WebhookEvent.received_at,
                                    WebhookEvent.attempts, WebhookEvent.last_error)
                             .where(WebhookEvent.status == "parked")
                             .order_by(WebhookEvent.received_at).limit(LISTED)).all()
    last_webhook = session.scalar(select(func.max(WebhookEvent.received_at))
                                  .where(WebhookEvent.source == "webhook"))
    backlog = sum(int(by_status.get(s, 0)) for s in UNSETTLED)
    return {
        "by_status": {k: int(v) for k, v in sorted(by_status.items())},
        "backlog": backlog, "oldest_unsettled_at": _iso(oldest),
        "oldest_unsettled_age_minutes": _age_minutes(now, oldest),
        "stuck": oldest is not None and now - oldest > stuck_after,
        "parked": [{"id": i, "kind": k, "received_at": _iso(at), "attempts": n,
                    "last_error": _scrub(err)} for i, k, at, n, err in parked],
        "parked_count": int(by_status.get("parked", 0)),
        "last_webhook_at": _iso(last_webhook),
        "last_webhook_age_minutes": _age_minutes(now, last_webhook),
    }


def _outbox(session: Session, audience: str | None) -> dict[str, Any]:
    """Contacts whose newest revision the ESP has not settled yet (the next sync's work)."""
    if audience is None:
        return {"audience_id": None, "backlog": None}
    state = and_(PushState.contact_id == Contact.id, PushState.audience_id == audience)
    waiting = session.scalar(select(func.count()).select_from(Contact).outerjoin(PushState, state)
                             .where(or_(PushState.contact_id.is_(None),
                                        Contact.revision > PushState.settled_revision))) or 0
    return {"audience_id": audience, "backlog": int(waiting)}


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
                "runs": runs, "held_withdrawals": _held_withdrawals(session),
                "inbox": _inbox(session, moment,
                                timedelta(minutes=settings.alert_inbox_stuck_minutes))}
            return brief | {"alerts": alerts(brief)}
        last_reconcile = session.scalar(select(func.max(SyncRun.finished_at)).where(
            SyncRun.kind == "reconcile", SyncRun.outcome.in_(SUCCESS)))
        head = chain.head(session)
        tombstones = session.scalar(select(func.count()).select_from(LedgerTombstone)) or 0
        doc: dict[str, Any] = {
            "schema": STATUS_SCHEMA, "generated_at": _iso(moment),
            "runs": runs,
            "held_withdrawals": _held_withdrawals(session),
            "parked_contacts": _parked_contacts(session),
            "inbox": _inbox(session, moment,
                            timedelta(minutes=settings.alert_inbox_stuck_minutes)),
            "outbox": _outbox(session, settings.mailchimp_audience_id),
            "reconciliation": {"last_success_at": _iso(last_reconcile),
                               "age_minutes": _age_minutes(moment, last_reconcile)},
            "ledger": {"head_seq": head.seq, "head_hash": head.hash,
                       "head_moved_at": _iso(head.updated_at), "tombstones": int(tombstones)},
            "repermission": repermission_due(session, settings, now=moment).summary(),
            # The last audience audit's findings (counts per class), if one ran.
            "audit": _last_audit(session),
        }
    doc["alerts"] = alerts(doc)
    return doc
