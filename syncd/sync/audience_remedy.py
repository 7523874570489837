"""`syncd audience remedy`: the explicit remedies for members the audit finds mailed
without provable consent (rule 12), each with a dry run and under the safety limit.

What Mailchimp's API allows, and so what syncd offers:
- `unsubscribe`: PATCH the member to `unsubscribed`. Mailchimp keeps the record (and its
  compliance state: only the person's own new opt-in brings them back).
- `archive`: DELETE the member (Mailchimp archives it; a later add with fresh consent
  is possible).
What it does not allow: there is no API call that asks a subscribed member to confirm
again (a re-permission mail); that is a campaign sent from Mailchimp itself. Neither
remedy writes a withdrawal into the ledger: the person made none (I13). Each is recorded
in the audit log with counts only."""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.addresses import subscriber_hash
from syncd.config.targets import TargetSettings
from syncd.context import AppContext
from syncd.db import transaction
from syncd.esp.protocol import EspWriter
from syncd.store import audit, push_state
from syncd.sync.audience_audit import CLASSES, Finding, run_audit

ACTIONS = ("unsubscribe", "archive")
REMEDIABLE = frozenset({"mailed_without_consent", "subscribed_without_contact"})


@dataclass
class RemedyReport:
    klass: str
    action: str
    dry_run: bool
    outcome: str = "dry_run"  # dry_run | refused | succeeded | partial
    selected: int = 0
    done: int = 0
    missing: int = 0
    failed: int = 0
    limit: int = 0
    error: str | None = None
    examples: list[str] = field(default_factory=list)  # addresses: terminal only

    def counts(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "examples"}


def run_remedy(ctx: AppContext, esp: EspWriter, *, klass: str, action: str,
               dry_run: bool, force: bool = False,
               target: TargetSettings | None = None) -> RemedyReport:
    """The remedy in the target's audience (None: the only target), under its own
    safety limit."""
    aimed = target or ctx.settings.target()
    if klass not in REMEDIABLE:
        raise ValueError(f"no remedy for class {klass!r}; one of: {', '.join(sorted(REMEDIABLE))}")
    if action not in ACTIONS:
        raise ValueError(f"unknown remedy {action!r}; one of: {', '.join(ACTIONS)}")
    chosen: list[Finding] = []
    live = 0

    def each(finding: Finding) -> None:
        nonlocal live
        live += finding.status in ("subscribed", "pending")
        if finding.klass == klass:
            chosen.append(finding)

    run_audit(ctx, esp, each=each, target=aimed)
    limit = max(aimed.unsubscribe_floor, int(live * aimed.max_unsubscribe_share))
    report = RemedyReport(klass=klass, action=action, dry_run=dry_run, selected=len(chosen),
                          limit=limit, examples=[f.email for f in chosen[:10]])
    if len(chosen) > limit and not force:
        report.outcome = "refused"
        named = ctx.settings.target_setting
        report.error = (f"refused: {len(chosen)} of {live} live members, more than the safety "
                        f"limit ({limit}: {named(aimed, 'unsubscribe_floor')} and "
                        f"{named(aimed, 'max_unsubscribe_share')}); run with --force if "
                        "intended")
        return report
    if dry_run:
        return report
    for finding in chosen:
        if action == "unsubscribe":
            result = esp.set_status(finding.email, "unsubscribed")
            report.done += result.outcome == "written"
            report.missing += result.outcome == "missing"
            report.failed += result.outcome == "failed"
        else:
            esp.archive_member(subscriber_hash(finding.email))
            report.done += 1
        if finding.contact_id is not None:
            _learn(ctx, aimed.audience_id, finding.contact_id,
                   "unsubscribed" if action == "unsubscribe" else "archived")
    report.outcome = "partial" if report.failed else "succeeded"
    with transaction(ctx.sessions) as session:
        audit.record(session, actor="cli", action="audience_remedy", contact_id=None,
                     remedy=report.action, audit_class=report.klass, selected=report.selected,
                     done=report.done, missing=report.missing, failed=report.failed)
    return report


def _learn(ctx: AppContext, audience: str, contact_id: int, status: str) -> None:
    with transaction(ctx.sessions) as session:
        push_state.set_status(session, audience, [contact_id], status)


__all__ = ["ACTIONS", "CLASSES", "REMEDIABLE", "RemedyReport", "run_remedy"]
