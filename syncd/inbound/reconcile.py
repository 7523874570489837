"""The reconciliation pull: what the webhooks missed (I4), and Mailchimp's member state
kept current (syncd.sync.member_state).

Mailchimp retries a failed webhook for 75 minutes, then drops it. This run asks
Mailchimp for every member whose `last_changed` is at or after the cursor minus
`reconcile_overlap_minutes` (90 by default, more than the 75 minutes of retries), page
by page. For members that match a contact it records status, address, `last_changed`
and opt-in proof. A member whose status MOVED to `unsubscribed` or `cleaned` after the
state syncd knew is applied through the SAME inbox and handler as a webhook (source
"reconciliation"), dated by Mailchimp's `last_changed`. A newer `last_changed` alone (an
admin edit, syncd's own write) is no unsubscribe and records none (I13). So an outage of
any length loses nothing: what Mailchimp knows, the next run finds.

- Idempotent with the webhooks: a member's event is keyed by (status, address,
  last_changed), so overlapping runs store it once; and when the webhook for the same
  unsubscribe was applied, the handler finds a withdrawal within minutes of that moment
  (with no confirmation between) and writes no second one; and the handler records the
  member as unsubscribed, so the next run sees no move. Lists and suppressions are
  set-like; a member already in that state is stored as `ignored` ("already in effect").
- The cursor (table `cursors`, `reconcile:<audience>`) moves only after every page has
  been applied (or durably stored as failed, which the inbox retries), to the newest
  `last_changed` seen. A run stopped half-way or failing leaves it; the
  next run repeats the window, harmlessly.
- First run (no cursor): a full pull, paged, so that unsubscribes from before syncd was
  installed are known too. Large audiences: this run is the slow one.
- One run per audience at a time (`single_runner`, lock `reconcile:<audience>`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from syncd.clock import as_utc, utcnow
from syncd.config.targets import TargetSettings
from syncd.context import AppContext
from syncd.db import transaction
from syncd.esp.protocol import EspReader, RemoteMember
from syncd.logs import get_logger
from syncd.metrics import LAST_SUCCESS, RUNS
from syncd.runner_lock import single_runner
from syncd.schema import RunKind, RunOutcome
from syncd.store import cursors, runs
from syncd.sync import permission_moves
from syncd.sync.member_state import observe_page, receive_member
from syncd.sync.report import Report
from syncd.webhooks import inbox

log = get_logger("syncd.reconcile")
# Mailchimp's member listing needs a lower bound; this one means "everything".
FULL_PULL_SINCE = datetime(2001, 1, 1, tzinfo=UTC)


@dataclass
class ReconcileReport(Report):
    audience_id: str
    outcome: str = RunOutcome.RUNNING  # succeeded | interrupted | failed
    full_pull: bool = False
    since: str | None = None
    cursor_before: str | None = None
    cursor_after: str | None = None
    seen: int = 0
    applied: int = 0
    unchanged: int = 0  # already in effect, or stored by an earlier run
    failed: int = 0  # kept in the inbox, retried by retry_pending
    skipped_no_address: int = 0
    seen_moves: int = 0  # members whose status moved to unsubscribed/cleaned
    state_recorded: int = 0  # member states of known contacts added or changed
    permissions_withdrawn: int = 0  # GDPR permission switched off (sync.permission_moves)
    retried_inbox: int = 0
    duration_seconds: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)


def cursor_name(audience_id: str) -> str:
    return f"reconcile:{audience_id}"


def run_reconcile(ctx: AppContext, *, target: TargetSettings | None = None,
                  esp: EspReader | None = None, stop: threading.Event | None = None,
                  page_size: int = 1000) -> ReconcileReport:
    """Pull the members of the target's audience (None: the only target) changed since
    its cursor (minus the overlap) and apply them like webhooks (routed to that target).
    Raises RunnerBusy, ConfigError, EspError and InboxUnavailable (after recording the
    failed run); the cursor is then unchanged."""
    audience = (target or ctx.settings.target()).audience_id
    with single_runner(ctx.engine, f"reconcile:{audience}"):
        if esp is not None:
            return _run(ctx, esp, audience, stop, page_size)
        from syncd.esp.mailchimp import mailchimp_client

        client = mailchimp_client(ctx.settings, audience)
        try:
            return _run(ctx, client, audience, stop, page_size)
        finally:
            client.close()


def _run(ctx: AppContext, esp: EspReader, audience: str,
         stop: threading.Event | None, page_size: int) -> ReconcileReport:
    started, began = time.monotonic(), utcnow()
    report = ReconcileReport(audience_id=audience)
    with transaction(ctx.sessions) as session:
        run_id = runs.start(session, kind=RunKind.RECONCILE, audience_id=audience,
                            started_at=began)
    try:
        report.retried_inbox = inbox.retry_pending(ctx)
        name = cursor_name(audience)
        with transaction(ctx.sessions) as session:
            cursor = cursors.read(session, name)
        overlap = timedelta(minutes=ctx.settings.reconcile_overlap_minutes)
        since = cursor - overlap if cursor is not None else FULL_PULL_SINCE
        report.full_pull = cursor is None
        report.since = since.isoformat()
        report.cursor_before = cursor.isoformat() if cursor else None
        newest = _pull(ctx, esp, audience, since, stop=stop, report=report,
                       page_size=page_size)
        if report.outcome == RunOutcome.RUNNING:
            if newest is not None and (cursor is None or newest > cursor):
                with transaction(ctx.sessions) as session:
                    cursors.write(session, name, newest, forward_only=True)
                report.cursor_after = newest.isoformat()
            else:
                report.cursor_after = report.cursor_before
            report.outcome = RunOutcome.SUCCEEDED
        else:
            report.cursor_after = report.cursor_before
    except BaseException as exc:
        report.outcome = RunOutcome.FAILED
        _finish(ctx, run_id, report, started, error=type(exc).__name__)
        raise
    _finish(ctx, run_id, report, started)
    return report


def _pull(ctx: AppContext, esp: EspReader, audience: str, since: datetime, *,
          stop: threading.Event | None, report: ReconcileReport,
          page_size: int = 1000) -> datetime | None:
    """Every member changed since `since`, any status: the state of the known members is
    kept current (syncd.sync.member_state), and a status that really moved to
    unsubscribed/cleaned (not merely a newer last_changed) is applied as its webhook."""
    newest: datetime | None = None

    def reported(member: RemoteMember) -> None:
        status = receive_member(ctx, audience, member)
        report.seen_moves += 1
        if status == "no_address":
            report.skipped_no_address += 1
        elif status == "applied":
            report.applied += 1
        elif status in ("failed", "parked"):
            report.failed += 1
        else:
            report.unchanged += 1

    permissions = permission_moves.mapped(ctx, audience, esp)
    for page in esp.iter_changed_members(status=None, since=since, page_size=page_size):
        if stop is not None and stop.is_set():
            report.outcome = RunOutcome.INTERRUPTED
            return newest
        seen = observe_page(ctx, audience, page, report=reported, report_unmatched=True,
                            permissions=permissions)
        report.seen += seen.seen
        report.state_recorded += seen.recorded
        report.permissions_withdrawn += seen.permissions_withdrawn
        for status, n in seen.by_status.items():
            report.by_status[status] = report.by_status.get(status, 0) + n
        for member in page:
            changed = as_utc(member.last_changed)
            newest = changed if newest is None or changed > newest else newest
    return newest


def _finish(ctx: AppContext, run_id: int, report: ReconcileReport, started: float, *,
            error: str | None = None) -> None:
    report.duration_seconds = round(time.monotonic() - started, 3)
    try:
        with transaction(ctx.sessions) as session:
            runs.finish(session, run_id, outcome=report.outcome,
                        counts=report.run_counts(), error=error)
    except Exception:
        log.warning("reconcile run record not updated", run_id=run_id)
    RUNS.labels(kind=RunKind.RECONCILE, outcome=report.outcome).inc()
    if report.outcome == RunOutcome.SUCCEEDED:
        LAST_SUCCESS.labels(kind=RunKind.RECONCILE).set(time.time())
