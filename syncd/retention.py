"""Storage limitation (Art. 5(1)(e) GDPR): keep personal data no longer than its purpose
needs. Run daily by `syncd serve`, or once by `syncd prune`.

- Raw webhook bodies hold the address and profile fields Mailchimp sent. They serve
  re-application and a short audit window; after `retention_webhook_body_days` the body
  is nulled. The row's metadata (dedupe key, kind, status, keyed hash, times) stays: it
  still stops a replayed delivery from being applied twice.
- A body whose event is not settled (still waiting for a retry, or parked for an operator)
  is kept: it is the only copy of a withdrawal that has not been applied yet (Art. 7(3)).
  Parked events raise an alert (`syncd_inbox_parked_events`).
- Run history (`sync_runs`) older than `retention_run_history_days` is deleted.
- Sign-up mails sent or given up, and confirmation links spent or expired, are deleted
  30 days after (syncd.signup.outbox.prune).

The consent ledger and the audit trail are not pruned here: they are the proof of consent
the controller must be able to show (Art. 7(1)).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.db import transaction
from syncd.logs import get_logger
from syncd.schema import SyncRun, WebhookEvent
from syncd.signup.outbox import prune as prune_signup

log = get_logger(__name__)

# Outcomes after which a stored body is no longer needed to apply the event.
SETTLED_STATUSES = ("applied", "ignored")


def prune(ctx: AppContext, *, now: datetime | None = None) -> dict[str, int]:
    """Null old webhook bodies, delete old run history; returns what was done, by kind."""
    moment = now or utcnow()
    body_cutoff = moment - timedelta(days=ctx.settings.retention_webhook_body_days)
    runs_cutoff = moment - timedelta(days=ctx.settings.retention_run_history_days)
    with transaction(ctx.sessions) as session:
        nulled = _rowcount(session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.received_at < body_cutoff,
                   WebhookEvent.body.is_not(None),
                   WebhookEvent.status.in_(SETTLED_STATUSES))
            .values(body=None)
            .execution_options(synchronize_session=False)))
        kept = session.scalar(
            select(func.count()).select_from(WebhookEvent)
            .where(WebhookEvent.received_at < body_cutoff,
                   WebhookEvent.body.is_not(None),
                   WebhookEvent.status.not_in(SETTLED_STATUSES))) or 0
        deleted = _rowcount(session.execute(
            delete(SyncRun).where(SyncRun.started_at < runs_cutoff)
            .execution_options(synchronize_session=False)))
        signup = prune_signup(session, ctx.settings, moment)
    result = {"webhook_bodies_nulled": nulled, "sync_runs_deleted": deleted,
              "webhook_bodies_kept_unsettled": int(kept), **signup}
    if kept:
        log.warning("old webhook bodies kept: their events are not applied yet", count=kept,
                    hint="resolve parked inbox events (syncd webhooks ...)")
    return result


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
