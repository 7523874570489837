"""Storage limitation (Art. 5(1)(e) GDPR): keep personal data no longer than its purpose
needs. Run daily by `syncd serve`, or once by `syncd prune` (`--dry-run` counts only).
docs/operations.md has the retention table and the record of processing (Art. 30).

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
- The consent lifecycle (syncd.consent.lifecycle): unconfirmed sign-ups deleted, contacts
  with no purpose left erased (suppression kept); their ledger events leave tombstones so
  the chain still verifies.
- Audit entries older than `retention_audit_days` are deleted.

The consent ledger of a contact that still has a purpose is not pruned: it is the proof
of consent the controller must be able to show (Art. 7(1)). Each rule that removed
something writes one audit entry (actor "retention") with its count.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from syncd.clock import utcnow
from syncd.consent import lifecycle
from syncd.context import AppContext
from syncd.crm.erasure import erase_in
from syncd.db import transaction
from syncd.logs import get_logger
from syncd.signup.outbox import prune as prune_signup
from syncd.store import audit
from syncd.store import retention as stored
from syncd.store.erasure import remove_contacts

log = get_logger(__name__)

ACTOR = "retention"
UNCONFIRMED_REASON = "unconfirmed_signup"
NO_PURPOSE_REASON = "no_purpose_left"


def prune(ctx: AppContext, *, now: datetime | None = None,
          dry_run: bool = False) -> dict[str, int]:
    """Apply every retention rule; returns what was done (or would be, `dry_run`), by kind."""
    moment = now or utcnow()
    settings = ctx.settings
    body_cutoff = moment - timedelta(days=settings.retention_webhook_body_days)
    runs_cutoff = moment - timedelta(days=settings.retention_run_history_days)
    audit_days = settings.retention_audit_days
    result: dict[str, int] = {}
    with transaction(ctx.sessions) as session:
        result["webhook_bodies_kept_unsettled"] = stored.count_unsettled_bodies(
            session, body_cutoff)
        unconfirmed = lifecycle.unconfirmed_signups(session, settings, now=moment)
        purposeless, addresses = lifecycle.no_purpose_left(
            session, settings, ctx.keyring, now=moment,
            exclude=frozenset(unconfirmed.ids + unconfirmed.kept))
        result["unconfirmed_signups_deleted"] = len(unconfirmed.ids)
        result["no_purpose_contacts_erased"] = len(purposeless.ids)
        result["contacts_kept_live_at_esp"] = (unconfirmed.kept_live_at_esp
                                               + purposeless.kept_live_at_esp)
        result["webhook_bodies_nulled"] = stored.null_settled_bodies(
            session, body_cutoff, dry_run=dry_run)
        result["sync_runs_deleted"] = stored.delete_runs(session, runs_cutoff, dry_run=dry_run)
        # Old audit entries first: the rules' own entries below are new, and stay.
        result["audit_entries_deleted"] = stored.delete_audit(
            session, moment - timedelta(days=audit_days), dry_run=dry_run) if audit_days else 0
        if dry_run:
            result.update(prune_signup(session, settings, moment, dry_run=True))
            return result  # nothing was written
        events = remove_contacts(session, unconfirmed.ids, reason=UNCONFIRMED_REASON)
        erased_events = 0
        for contact_id in purposeless.ids:
            _, removed, _ = erase_in(session, ctx.keyring, addresses[contact_id], actor=ACTOR,
                                     reason=NO_PURPOSE_REASON)
            erased_events += removed
        _audit_rules(session, settings, result, events, erased_events)
        result.update(prune_signup(session, settings, moment))
    if result["webhook_bodies_kept_unsettled"]:
        log.warning("old webhook bodies kept: their events are not applied yet",
                    count=result["webhook_bodies_kept_unsettled"],
                    hint="resolve parked inbox events (syncd webhooks ...)")
    return result


def _audit_rules(session: Any, settings: Any, result: dict[str, int], events: int,
                 erased_events: int) -> None:
    """One audit entry per rule that removed something (no addresses, no contact ids)."""
    if result["unconfirmed_signups_deleted"]:
        audit.record(session, actor=ACTOR, action="retention_unconfirmed_signups_deleted",
                     contact_id=None, contacts=result["unconfirmed_signups_deleted"],
                     consent_events=events, older_than_days=settings.retention_unconfirmed_days)
    if result["no_purpose_contacts_erased"]:
        audit.record(session, actor=ACTOR, action="retention_no_purpose_contacts_erased",
                     contact_id=None, contacts=result["no_purpose_contacts_erased"],
                     consent_events=erased_events,
                     older_than_days=settings.retention_no_purpose_days)
    if result["audit_entries_deleted"]:
        audit.record(session, actor=ACTOR, action="retention_audit_entries_deleted",
                     contact_id=None, entries=result["audit_entries_deleted"],
                     older_than_days=settings.retention_audit_days)
    if result["webhook_bodies_nulled"] or result["sync_runs_deleted"]:
        audit.record(session, actor=ACTOR, action="retention_pruned", contact_id=None,
                     webhook_bodies_nulled=result["webhook_bodies_nulled"],
                     sync_runs_deleted=result["sync_runs_deleted"])
