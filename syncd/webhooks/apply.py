"""The effects of one audience event on the CRM, inside the caller's transaction.

The same function serves webhooks and the reconciliation pull, so a missed webhook and
a delivered one end in the same state. Rules (consent-rules.md):

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

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from syncd import logs
from syncd.clock import as_utc
from syncd.config import Settings
from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.crm import address_history, store, suppression
from syncd.errors import SyncdError
from syncd.keys import Keyring
from syncd.schema import ConsentEvent, Contact, InternalList, PushState, WebhookEvent
from syncd.store import audit
from syncd.webhooks import purge
from syncd.webhooks.mailchimp_form import EventKind, InboundEvent, parse_body

CHANNEL_WEBHOOK = "esp_webhook"
CHANNEL_RECONCILIATION = "reconciliation"
ACTOR = "esp"
APPLIED = "applied"
IGNORED = "ignored"
# A webhook and the reconciliation pull see the same unsubscribe at nearly the same
# moment (fired_at vs last_changed); within this window, with no confirmation between,
# they are one withdrawal, not two.
SAME_WITHDRAWAL_WINDOW = timedelta(minutes=5)
MAX_RENAMES = 10
log = logs.get_logger("syncd.webhooks")
ADDRESSED_KINDS = (EventKind.SUBSCRIBE, EventKind.UNSUBSCRIBE, EventKind.PROFILE,
                   EventKind.CLEANED)


class Unappliable(SyncdError):
    """This event can never be applied as it is (no address, conflicting address): it is
    kept and parked at once for a person to look at. The message names no address."""


@dataclass(frozen=True)
class Outcome:
    status: str  # applied | ignored
    note: str
    contact_id: int | None = None


def apply(  # noqa: PLR0911 - one return per kind reads as the table it is
        session: Session, event: InboundEvent, *, settings: Settings, keyring: Keyring,
        event_key: str, channel: str, now: datetime) -> Outcome:
    """Apply one event in the caller's transaction. Idempotent: a second call with the
    same event and key changes nothing. Raises Unappliable for a poison event."""
    audience = settings.mailchimp_audience_id
    if event.kind in (EventKind.CAMPAIGN, EventKind.UNKNOWN):
        return Outcome(IGNORED, f"{event.kind} events are stored, not applied")
    if audience and event.list_id and event.list_id != audience:
        log.info("webhook for another audience ignored", list_id=event.list_id[:64],
                 kind=str(event.kind))
        return Outcome(IGNORED, "event for another audience")
    moment = min(as_utc(event.fired_at), now) if event.fired_at else now
    job = _Job(session, event, settings, keyring, event_key, channel, moment, now)
    if event.kind is EventKind.UPEMAIL:
        return job.upemail()
    if event.email is None:
        raise Unappliable(f"{event.kind} event has no usable data[email]")
    if event.kind is EventKind.UNSUBSCRIBE or (
            event.kind is EventKind.CLEANED and event.is_abuse):
        return job.withdraw()
    if event.kind is EventKind.CLEANED:
        return job.bounce()
    if event.kind is EventKind.PROFILE:
        return job.profile()
    return job.subscribe()


@dataclass
class _Job:
    session: Session
    event: InboundEvent
    settings: Settings
    keyring: Keyring
    event_key: str
    channel: str
    moment: datetime  # when the ESP saw it (fired_at), never later than now
    now: datetime

    @property
    def purpose(self) -> str:
        return self.settings.sync_purpose

    def withdraw(self) -> Outcome:
        event, session = self.event, self.session
        assert event.email is not None
        abuse = event.is_abuse
        deleted = event.action == "delete"
        reason = event.reason or ("abuse" if abuse else "unsubscribe")
        scope = suppression.ALL_PURPOSES if abuse else self.purpose
        kind = "abuse" if abuse else ("esp_delete" if deleted else str(event.kind))
        # The hot path (a known address, nothing loaded in this session as ORM objects
        # that a Core write could go stale under): the same writes in Core SQL.
        known = (purge.find(session, event.email, self.moment - SAME_WITHDRAWAL_WINDOW)
                 if not session.identity_map else None)
        if known is not None:
            changed, added_any = purge.withdraw(
                session, known, sorted(address_hmacs(self.keyring, [event.email])),
                purge.Withdrawal(
                    purpose=self.purpose, moment=self.moment,
                    record=self._withdrawal(reason, deleted), dedupe_salt=self.event_key,
                    why=f"{event.kind} ({reason})", abuse=abuse, deleted=deleted,
                    channel=self.channel, actor=ACTOR, suppression_scope=scope,
                    suppression_reason=kind, window=SAME_WITHDRAWAL_WINDOW))
            self._learn_status(known.id, "archived" if deleted else self._gone_status())
            added_any |= self._suppress_earlier(known.id, scope, kind, same=False)
            if not (changed or added_any):
                return Outcome(IGNORED, "already in effect", known.id)
            return Outcome(APPLIED, "withdrawn and purged", known.id)
        contact = resolve_contact(session, self.keyring, event.email)
        hmacs = {self.keyring.address_hmac(event.email)}
        contact_id = contact.id if contact else None
        changed = False
        same = False
        if contact is not None:
            hmacs.add(self.keyring.address_hmac(contact.email_key))
            same = _same_withdrawal_recorded(session, contact.id, self.purpose, self.moment)
            if not same:
                changed = ledger.append(session, contact, self._withdrawal(reason, deleted),
                                        actor=ACTOR, dedupe_salt=self.event_key)
            why = f"{event.kind} ({reason})"
            # Art. 21(3): an abuse complaint ends direct marketing of every kind.
            purposes = self._marketing_purposes() if abuse else {self.purpose}
            changed |= self._purge(contact, purposes, why, marketing_only=abuse)
            if deleted:
                audit.record(session, actor=ACTOR, action="esp_member_deleted",
                             contact_id=contact.id, channel=self.channel)
        if contact is not None:
            # One person, every address (I12): the addresses they had before too.
            hmacs.update(address_history.hmacs_of(session, contact.id))
            self._learn_status(contact.id, "archived" if deleted else self._gone_status())
        added = [suppression.suppress(session, address_hmac=address_hmac, purpose=scope,
                                      reason=kind, actor=ACTOR, contact_id=contact_id,
                                      created_at=self.moment, renew=not same)
                 for address_hmac in sorted(hmacs)]
        if contact is not None and any(added):
            store.touch(contact)  # a new suppression changes what the sync may push
        if not (changed or any(added)):
            return Outcome(IGNORED, "already in effect", contact_id)
        note = "withdrawn and purged" if contact else "unknown address: suppression only"
        return Outcome(APPLIED, note, contact_id)

    def _gone_status(self) -> str:
        return "cleaned" if self.event.kind is EventKind.CLEANED else "unsubscribed"

    def _suppress_earlier(self, contact_id: int, scope: str, kind: str, *, same: bool) -> bool:
        added = False
        for address_hmac in address_history.hmacs_of(self.session, contact_id):
            added |= suppression.suppress(
                self.session, address_hmac=address_hmac, purpose=scope, reason=kind,
                actor=ACTOR, contact_id=contact_id, created_at=self.moment, renew=not same)
        return added

    def _learn_status(self, contact_id: int, status: str) -> None:
        """What Mailchimp now has for the member (it reported it): the planner decides
        a later re-consent against this state (`pending`), whatever order the events
        came in; and the reconciliation sees no second move for the same unsubscribe."""
        audience = self.event.list_id or self.settings.mailchimp_audience_id
        if not audience:
            return
        self.session.execute(
            update(PushState)
            .where(PushState.contact_id == contact_id, PushState.audience_id == audience,
                   or_(PushState.esp_last_changed.is_(None),
                       PushState.esp_last_changed <= self.moment))
            .values(esp_status=status, esp_last_changed=self.moment)
            .execution_options(synchronize_session=False))

    def _withdrawal(self, reason: str, deleted: bool) -> ConsentRecord:
        return ConsentRecord(
            purpose=self.purpose, action=Action.WITHDRAWN, occurred_at=self.moment,
            source=self.channel, reason=(reason + " (deleted at ESP)")[:200]
            if deleted else reason, campaign_id=self.event.campaign_id)

    def bounce(self) -> Outcome:
        event, session = self.event, self.session
        assert event.email is not None
        contact = resolve_contact(session, self.keyring, event.email)
        if contact is None:
            return Outcome(IGNORED, "hard bounce for an unknown address")
        changed = False
        # A bounce of an address the contact no longer has says nothing about the new one.
        if contact.email_key == event.email and contact.undeliverable_at is None:
            changed = True
            contact.undeliverable_at = self.moment
            store.touch(contact)
            audit.record(session, actor=ACTOR, action="marked_undeliverable",
                         contact_id=contact.id, channel=self.channel,
                         reason=event.reason or "hard")
        changed |= self._purge(contact, {self.purpose}, "cleaned (hard bounce)")
        if contact.email_key == event.email:
            self._learn_status(contact.id, "cleaned")
        if not changed:
            return Outcome(IGNORED, "already in effect", contact.id)
        return Outcome(APPLIED, "marked undeliverable", contact.id)

    def _marketing_purposes(self) -> set[str]:
        return set(self.session.scalars(select(InternalList.purpose).distinct()
                                        .where(InternalList.marketing.is_(True))))

    def _purge(self, contact: Contact, purposes: set[str], why: str, *,
               marketing_only: bool = False) -> bool:
        """Off the lists of these purposes, except a purpose with a consent confirmed
        AFTER this event: a newer confirmed consent beats an older withdrawal (I6), and
        the lists it brought stay whatever order the two arrive in."""
        newer = set(self.session.scalars(select(ConsentEvent.purpose).distinct().where(
            ConsentEvent.contact_id == contact.id,
            ConsentEvent.action == str(Action.CONFIRMED),
            ConsentEvent.occurred_at > self.moment)))
        removed = False
        for purpose in sorted(purposes - newer):
            removed |= bool(store.remove_from_lists(self.session, contact, actor=ACTOR,
                                                    reason=why, purpose=purpose,
                                                    marketing_only=marketing_only))
        return removed

    def upemail(self) -> Outcome:
        event, session, keyring = self.event, self.session, self.keyring
        if event.old_email is None or event.new_email is None:
            raise Unappliable("upemail event lacks data[old_email] or data[new_email]")
        new_key, new_display = event.new_email, event.new_email_display or event.new_email
        # A later rename of the new address may have arrived first: end where it ends.
        final = _follow_renames(session, keyring, new_key, after=self.moment)
        if final is not None:
            new_key, new_display = final, final
        suppression.carry_over(session, old_hmac=keyring.address_hmac(event.old_email),
                               new_hmac=keyring.address_hmac(new_key), actor=ACTOR,
                               contact_id=None)
        contact = resolve_contact(session, keyring, event.old_email)
        if contact is None:
            contact = store.find_contact(session, new_key)
            if contact is None:
                return Outcome(APPLIED, "unknown address: suppressions carried over")
        if contact.email_key != new_key:
            holder = store.find_contact(session, new_key)
            if holder is not None:
                raise Unappliable("upemail: the new address belongs to another contact")
            old_hmac = keyring.address_hmac(contact.email_key)
            address_history.remember(session, contact_id=contact.id, old_hmac=old_hmac,
                                     at=self.moment)
            contact.email_key, contact.email_display = new_key, new_display
            contact.undeliverable_at = None  # rule 9: blocked only until the address changes
            store.touch(contact)
            session.flush()
            suppression.carry_over(session, old_hmac=old_hmac,
                                   new_hmac=keyring.address_hmac(new_key), actor=ACTOR,
                                   contact_id=contact.id)
            audit.record(session, actor=ACTOR, action="address_changed", contact_id=contact.id,
                         channel=self.channel)
        audience = event.list_id or self.settings.mailchimp_audience_id
        for state in session.scalars(select(PushState).where(PushState.contact_id == contact.id)):
            if (audience is None or state.audience_id == audience) and state.esp_email != new_key:
                state.esp_email = new_key
                state.updated_at = self.moment
        self._replay_arrived_for(new_key, contact)
        return Outcome(APPLIED, "address changed", contact.id)

    def _replay_arrived_for(self, address: str, contact: Contact) -> None:
        """Events for the new address that arrived before this upemail found no contact;
        apply them now (idempotent), so arrival order does not matter."""
        rows = self.session.execute(
            select(WebhookEvent.body, WebhookEvent.dedupe_key, WebhookEvent.source)
            .where(WebhookEvent.address_hmac == self.keyring.address_hmac(address),
                   WebhookEvent.kind.in_([str(k) for k in ADDRESSED_KINDS]),
                   WebhookEvent.status.in_([APPLIED, IGNORED]),
                   WebhookEvent.body.is_not(None))
            .order_by(WebhookEvent.fired_at, WebhookEvent.id)).all()
        for body, key, source in rows:
            earlier = parse_body((body or "").encode("utf-8"))
            if earlier.email != contact.email_key:
                continue
            channel = CHANNEL_RECONCILIATION if source == "reconciliation" else CHANNEL_WEBHOOK
            outcome = apply(self.session, earlier, settings=self.settings, keyring=self.keyring,
                            event_key=key, channel=channel, now=self.now)
            if outcome.status == APPLIED:
                self.session.execute(update(WebhookEvent).where(WebhookEvent.dedupe_key == key)
                                     .values(status=APPLIED, last_error=None))

    def profile(self) -> Outcome:
        event, session = self.event, self.session
        assert event.email is not None
        if self.settings.webhook_profile_master != "esp":
            log.info("profile webhook stored, not applied: the CRM is master for names")
            return Outcome(IGNORED, "profile master is the CRM")
        contact = resolve_contact(session, self.keyring, event.email)
        if contact is None:
            return Outcome(IGNORED, "profile for an unknown address")
        hmacs = {self.keyring.address_hmac(event.email),
                 self.keyring.address_hmac(contact.email_key)}
        newer = session.scalar(select(WebhookEvent.id).where(
            WebhookEvent.kind == str(EventKind.PROFILE), WebhookEvent.status == APPLIED,
            WebhookEvent.address_hmac.in_(sorted(hmacs)), WebhookEvent.fired_at > self.moment,
            WebhookEvent.dedupe_key != self.event_key).limit(1))
        if newer is not None:
            return Outcome(IGNORED, "stale profile: a newer one was applied", contact.id)
        fields = {tag: crm for crm, tag in self.settings.mailchimp_merge_fields.items()}
        names: dict[str, str | None] = {}
        attributes: dict[str, str] = {}
        for tag, value in event.merges.items():
            crm_field = fields.get(tag)
            if crm_field in ("first_name", "last_name"):
                names[crm_field] = value.strip() or None
            elif crm_field is not None:
                attributes[crm_field] = value
        changed = sorted(name for name, value in names.items()
                         if getattr(contact, name) != value)
        for name in changed:
            setattr(contact, name, names[name])
        if attributes and {**contact.attributes, **attributes} != contact.attributes:
            contact.attributes = {**contact.attributes, **attributes}
            changed.append("attributes")
        if changed:
            store.touch(contact)
            audit.record(session, actor=ACTOR, action="contact_updated", contact_id=contact.id,
                         fields=changed, channel=self.channel)
        return Outcome(APPLIED, "profile updated" if changed else "profile unchanged",
                       contact.id)

    def subscribe(self) -> Outcome:
        event, session = self.event, self.session
        assert event.email is not None
        contact = resolve_contact(session, self.keyring, event.email)
        if contact is None:
            return Outcome(IGNORED, "subscribe never creates consent")
        audience = event.list_id or self.settings.mailchimp_audience_id
        state = session.get(PushState, (contact.id, audience)) if audience else None
        # Mailchimp sends `subscribe` for a confirmation click, its own sign-up form and an
        # admin's or API subscribe alike; the body does not say which. It is the person's
        # confirmation only if syncd itself asked for `pending` before this moment and
        # Mailchimp gives the confirmation's evidence (ip_opt of the click).
        asked = state.pending_requested_at if state is not None else None
        if state is None or state.esp_status != "pending" or asked is None or (
                as_utc(asked) > self.moment):
            return Outcome(IGNORED, "not a confirmation syncd asked for", contact.id)
        if not event.ip_opt:
            return Outcome(IGNORED, "subscribe without Mailchimp's opt-in evidence (no "
                                    "ip_opt): an admin or API subscribe, not a confirmation",
                           contact.id)
        if not _open_request_at(session, self.keyring, contact, self.purpose, self.moment):
            return Outcome(IGNORED, "no open consent request at that moment", contact.id)
        ledger.append(session, contact, ConsentRecord(
            purpose=self.purpose, action=Action.CONFIRMED, occurred_at=self.moment,
            source=self.channel, ip=event.ip_opt,
            reason=("double opt-in confirmed through Mailchimp's confirmation mail that "
                    "syncd asked for (evidence: ip_opt, fired_at)")),
            actor=ACTOR, dedupe_salt=self.event_key)
        state.esp_status = "subscribed"
        state.esp_opt_ip, state.esp_opt_at = event.ip_opt, self.moment
        return Outcome(APPLIED, "double opt-in confirmation recorded", contact.id)


def _same_withdrawal_recorded(session: Session, contact_id: int, purpose: str,
                              moment: datetime) -> bool:
    """A withdrawal within the window of `moment` with no confirmation in between: the
    webhook and the reconciliation pull of one unsubscribe must not both write one."""
    near = list(session.scalars(select(ConsentEvent.occurred_at).where(
        ConsentEvent.contact_id == contact_id, ConsentEvent.purpose == purpose,
        ConsentEvent.action == str(Action.WITHDRAWN),
        ConsentEvent.occurred_at >= moment - SAME_WITHDRAWAL_WINDOW,
        ConsentEvent.occurred_at <= moment + SAME_WITHDRAWAL_WINDOW)))
    for other in near:
        low, high = sorted((as_utc(other), moment))
        between = session.scalar(select(ConsentEvent.id).where(
            ConsentEvent.contact_id == contact_id, ConsentEvent.purpose == purpose,
            ConsentEvent.action == str(Action.CONFIRMED),
            ConsentEvent.occurred_at > low, ConsentEvent.occurred_at <= high).limit(1))
        if between is None:
            return True
    return False


def _open_request_at(session: Session, keyring: Keyring, contact: Contact, purpose: str,
                     moment: datetime) -> bool:
    facts = [f for f in ledger.facts_by_contact(session, [contact.id]).get(contact.id, [])
             if f.purpose == purpose and f.occurred_at <= moment]
    requests = [f.occurred_at for f in facts if f.action in (Action.GIVEN, Action.CONFIRMED)]
    blocks = [f.occurred_at for f in facts if f.action is Action.WITHDRAWN]
    address_hmac = keyring.address_hmac(contact.email_key)
    blocks += [s.created_at for s in suppression.facts_by_hmac(session, [address_hmac])
               .get(address_hmac, [])
               if s.purpose in (purpose, suppression.ALL_PURPOSES) and s.created_at <= moment]
    return bool(requests) and (not blocks or max(requests) > max(blocks))


def _renamed_to(session: Session, keyring: Keyring, address: str,
                after: datetime | None) -> tuple[str, datetime | None] | None:
    """The address a stored `upemail` moved `address` to (the latest, or the first
    fired after `after`), with its moment."""
    query = (select(WebhookEvent.body, WebhookEvent.fired_at)
             .where(WebhookEvent.kind == str(EventKind.UPEMAIL),
                    WebhookEvent.address_hmac == keyring.address_hmac(address),
                    WebhookEvent.status.in_([APPLIED, IGNORED]),
                    WebhookEvent.body.is_not(None)))
    if after is not None:
        query = query.where(WebhookEvent.fired_at > after).order_by(WebhookEvent.fired_at)
    else:
        query = query.order_by(WebhookEvent.fired_at.desc())
    for body, fired_at in session.execute(query.limit(5)):
        renamed = parse_body((body or "").encode("utf-8"))
        if renamed.old_email == address and renamed.new_email and renamed.new_email != address:
            return renamed.new_email, fired_at
    return None


def _follow_renames(session: Session, keyring: Keyring, address: str,
                    after: datetime | None) -> str | None:
    """Where later renames of `address` lead; None if it was never renamed."""
    seen: set[str] = {address}
    current, moment = address, after
    for _ in range(MAX_RENAMES):
        step = _renamed_to(session, keyring, current, moment)
        if step is None or step[0] in seen:
            break
        current, moment = step[0], (as_utc(step[1]) if step[1] else moment)
        seen.add(current)
    return current if current != address else None


def resolve_contact(session: Session, keyring: Keyring, address: str) -> Contact | None:
    """The contact with this address, or the one it was renamed to by an `upemail` that
    arrived before this event (Mailchimp does not promise delivery order)."""
    contact = store.find_contact(session, address)
    if contact is not None:
        return contact
    seen: set[str] = {address}
    current = address
    for _ in range(MAX_RENAMES):
        step = _renamed_to(session, keyring, current, None)
        if step is None or step[0] in seen:
            return None
        current = step[0]
        seen.add(current)
        contact = store.find_contact(session, current)
        if contact is not None:
            return contact
    return None


def address_hmacs(keyring: Keyring, addresses: Iterable[str | None]) -> set[str]:
    return {keyring.address_hmac(a) for a in addresses if a}
