"""Applying one audience event to the CRM, inside the caller's transaction: the rules, and
which effect each kind of event has (syncd.webhooks.purge, member_events, renames).

The same function serves webhooks and the reconciliation pull, so a missed webhook and
a delivered one end in the same state. Rules (docs/consent-rules.md):

- `unsubscribe`: a withdrawal in the ledger for the audience's purpose, dated when
  Mailchimp fired it, removal from every internal list of that purpose and a
  suppression entry for every address the person ever had (rule 5, I3, I12); the member
  state learns `unsubscribed`, so a later re-consent goes as `pending`. `reason=abuse`
  is an objection to direct marketing (Art. 21(2)-(3)): off every marketing list,
  suppressed for every purpose ("*").
  `action=delete` (the member was deleted at Mailchimp) is handled the same way.
- `cleaned`: `hard` marks the address undeliverable until it changes and takes it off
  the lists of the purpose (rule 9); `abuse` is an unsubscribe with abuse.
- `upemail`: the contact keeps its history under the new address; suppressions of the
  old address are carried over; the push state learns the new address, so the next
  sync updates the member instead of adding a new one.
- `profile`: names and mapped merge fields, only when the ESP is the master for them
  (`webhook_profile_master = "esp"`). Never consent.
- `subscribe`: never creates consent. It records Mailchimp's double opt-in confirmation
  (ip_opt, fired_at) only when ALL of: the contact exists; syncd itself asked for the
  member as `pending` before fired_at (push_state.pending_requested_at, and the member is
  still pending: Mailchimp sent the confirmation mail at our request, rule 3); the event
  carries the click's evidence (ip_opt: an admin's or API subscribe has none, I13); and
  the ledger holds a request for that purpose (a `given` or
  `confirmed` consent) at or before fired_at that is newer than every withdrawal and
  suppression at or before fired_at. Otherwise it is stored and ignored.
- `campaign`, unknown types and events for another audience: stored and ignored.

Order independence (I6): withdrawals and suppressions carry the ESP's moment (fired_at,
never later than now), so the time-based policy decides the same in any arrival order.
Events addressed to an old address follow stored `upemail` events to the contact that
now holds it, and an `upemail` re-applies events that arrived earlier for its new
address. A stale `profile` (an applied one fired later exists) changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from syncd import logs
from syncd.clock import as_utc
from syncd.config import Settings
from syncd.keys import Keyring
from syncd.metrics import WEBHOOK_UNROUTED
from syncd.schema import LedgerChannel
from syncd.webhooks import member_events, purge, renames
from syncd.webhooks.job import IGNORED, Job, Outcome, Unappliable
from syncd.webhooks.mailchimp_form import EventKind, InboundEvent

__all__ = ["Outcome", "Unappliable", "apply"]
log = logs.get_logger("syncd.webhooks")


def apply(  # noqa: PLR0911 - one return per kind reads as the table it is
        session: Session, event: InboundEvent, *, settings: Settings, keyring: Keyring,
        event_key: str, channel: LedgerChannel, now: datetime) -> Outcome:
    """Apply one event in the caller's transaction. Idempotent: a second call with the
    same event and key changes nothing. Raises Unappliable for a poison event."""
    if event.kind in (EventKind.CAMPAIGN, EventKind.UNKNOWN):
        return Outcome(IGNORED, f"{event.kind} events are stored, not applied")
    targets = settings.sync_targets
    # Routed by its list_id: the target of that audience, never another's.
    target = (settings.target_of_audience(event.list_id) if event.list_id
              else targets[0] if len(targets) == 1 else None)
    if targets and target is None:
        log.info("webhook for an audience no target syncs ignored",
                 list_id=event.list_id or "", kind=str(event.kind))
        WEBHOOK_UNROUTED.labels(kind=str(event.kind)).inc()
        return Outcome(IGNORED, "event for another audience" if event.list_id
                       else "event names no audience (several targets)")
    moment = min(as_utc(event.fired_at), now) if event.fired_at else now
    job = Job(session, event, settings, keyring, event_key, channel, moment, now, target)
    if event.kind is EventKind.UPEMAIL:
        return renames.upemail(job, lambda earlier, key, via: apply(
            session, earlier, settings=settings, keyring=keyring, event_key=key,
            channel=via, now=now))
    if event.email is None:
        raise Unappliable(f"{event.kind} event has no usable data[email]")
    if event.kind is EventKind.UNSUBSCRIBE or (
            event.kind is EventKind.CLEANED and event.is_abuse):
        return purge.withdraw_event(job)
    if event.kind is EventKind.CLEANED:
        return member_events.bounce(job)
    if event.kind is EventKind.PROFILE:
        return member_events.profile(job)
    return member_events.subscribe(job)
