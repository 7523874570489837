"""`syncd audience pull`: read the whole audience and record, for every member whose
address matches a CRM contact, what Mailchimp has (syncd.sync.member_state).

From then on these members are known: the planner treats them exactly as the members
syncd added (a CRM withdrawal or suppression unsubscribes them; a re-consent goes as
`pending`; never `subscribed` for an existing member, I2). Members that match no contact
are counted, never written. An unsubscribe or clean syncd did not know yet goes through
the inbox like the webhook Mailchimp would have sent (source "reconciliation").

Cost: ceil(N / 1000) + 2 read calls (count=1000 is Mailchimp's maximum; archived members
need their own pass), one page in memory at a time. The first sync of an audience runs
it by itself (cursor `audience_pull:<audience>`); afterwards reconciliation keeps the
state current. It runs under the sync's single-runner lock: never beside a push."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from syncd.clock import utcnow
from syncd.config.targets import TargetSettings
from syncd.context import AppContext
from syncd.db import transaction
from syncd.esp.protocol import AudienceReader, RemoteMember
from syncd.logs import get_logger
from syncd.metrics import RUNS
from syncd.runner_lock import single_runner
from syncd.schema import RunKind, RunOutcome
from syncd.store import cursors, runs
from syncd.sync import permission_moves
from syncd.sync.member_state import Observation, observe_page, receive_member
from syncd.sync.report import Report

log = get_logger("syncd.audience")


@dataclass
class PullReport(Report):
    audience_id: str
    outcome: str = RunOutcome.RUNNING  # succeeded | interrupted | failed
    seen: int = 0
    matched: int = 0
    unmatched: int = 0
    recorded: int = 0
    withdrawals_reported: int = 0
    permissions_withdrawn: int = 0  # GDPR permission switched off (sync.permission_moves)
    read_calls: int = 0
    duration_seconds: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)


def cursor_name(audience_id: str) -> str:
    return f"audience_pull:{audience_id}"


def pulled_at(ctx: AppContext, audience_id: str) -> datetime | None:
    """When the audience was last read whole; None: never."""
    with transaction(ctx.sessions) as session:
        return cursors.read(session, cursor_name(audience_id))


def was_pulled(ctx: AppContext, audience_id: str) -> bool:
    return pulled_at(ctx, audience_id) is not None


def run_pull(ctx: AppContext, *, target: TargetSettings | None = None,
             esp: AudienceReader | None = None,
             stop: threading.Event | None = None) -> PullReport:
    """The pull on its own (`syncd audience pull`) of the target's audience (None: the
    only target), under that target's sync lock."""
    audience = (target or ctx.settings.target()).audience_id
    with single_runner(ctx.engine, f"sync:{audience}"):
        if esp is not None:
            return pull_locked(ctx, esp, audience, stop=stop)
        from syncd.esp.mailchimp import mailchimp_client

        client = mailchimp_client(ctx.settings, audience)
        try:
            return pull_locked(ctx, client, audience, stop=stop)
        finally:
            client.close()


def pull_locked(ctx: AppContext, esp: AudienceReader, audience: str, *,
                stop: threading.Event | None = None) -> PullReport:
    """The pull, for a caller that holds the sync lock (the first sync run)."""
    started = time.monotonic()
    report = PullReport(audience_id=audience)
    with transaction(ctx.sessions) as session:
        run_id = runs.start(session, kind=RunKind.AUDIENCE_PULL, audience_id=audience)
    total = Observation()

    def reported(member: RemoteMember) -> None:
        receive_member(ctx, audience, member)
        report.withdrawals_reported += 1

    try:
        permissions = permission_moves.mapped(ctx, audience, esp)
        for page in esp.iter_audience(page_size=1000):
            report.read_calls += 1
            if stop is not None and stop.is_set():
                report.outcome = RunOutcome.INTERRUPTED
                break
            total.add(observe_page(ctx, audience, page, report=reported,
                                   report_unmatched=False, permissions=permissions))
        if report.outcome == RunOutcome.RUNNING:
            report.outcome = RunOutcome.SUCCEEDED
            with transaction(ctx.sessions) as session:
                cursors.write(session, cursor_name(audience), utcnow(), forward_only=False)
    except BaseException as exc:
        report.outcome = RunOutcome.FAILED
        _finish(ctx, run_id, report, total, started, error=type(exc).__name__)
        raise
    _finish(ctx, run_id, report, total, started)
    return report


def _finish(ctx: AppContext, run_id: int, report: PullReport, total: Observation,
            started: float, *, error: str | None = None) -> None:
    report.seen, report.matched, report.unmatched = total.seen, total.matched, total.unmatched
    report.recorded, report.by_status = total.recorded, dict(sorted(total.by_status.items()))
    report.permissions_withdrawn = total.permissions_withdrawn
    report.duration_seconds = round(time.monotonic() - started, 3)
    with transaction(ctx.sessions) as session:
        runs.finish(session, run_id, outcome=report.outcome, counts=report.run_counts(),
                    error=error)
    RUNS.labels(kind=RunKind.AUDIENCE_PULL, outcome=report.outcome).inc()
    log.info("audience_pulled", **{k: v for k, v in report.to_dict().items()
                                   if k != "by_status"})
