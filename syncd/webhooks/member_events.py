"""The effects of `cleaned` (a hard bounce), `profile` and `subscribe` on the CRM: what
Mailchimp reports of a member that is not a withdrawal and never creates consent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from syncd import logs
from syncd.clock import as_utc
from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.crm import store, suppression
from syncd.keys import Keyring
from syncd.schema import Contact
from syncd.store import audit, lists, push_state
from syncd.store import inbox as inbox_store
from syncd.webhooks import purge
from syncd.webhooks.job import ACTOR, APPLIED, IGNORED, Job, Outcome
from syncd.webhooks.mailchimp_form import EventKind, chosen_groups
from syncd.webhooks.renames import resolve_contact

log = logs.get_logger("syncd.webhooks")


def bounce(job: Job) -> Outcome:
    """`cleaned` (hard): the address is undeliverable until it changes, and off the lists
    of the purpose (rule 9)."""
    event, session = job.event, job.session
    assert event.email is not None
    contact = resolve_contact(session, job.keyring, event.email)
    if contact is None:
        return Outcome(IGNORED, "hard bounce for an unknown address")
    changed = False
    current = contact.email_key == event.email
    # A bounce of an address the contact no longer has says nothing about the new one.
    if current and contact.undeliverable_at is None:
        changed = True
        contact.undeliverable_at = job.moment
        store.touch(contact)
        audit.record(session, actor=ACTOR, action="marked_undeliverable",
                     contact_id=contact.id, channel=job.channel,
                     reason=event.reason or "hard")
    known = purge.find(session, contact.email_key, job.moment)
    assert known is not None  # the contact just found, by the same address
    removed = purge.unlist(session, known, {job.purpose}, moment=job.moment, actor=ACTOR,
                           why="cleaned (hard bounce)", now=job.now)
    for _ in removed:
        store.touch(contact)
    audit.append(session, removed)
    if current:
        job.learn_status(contact.id, "cleaned")
    if not (changed or removed):
        return Outcome(IGNORED, "already in effect", contact.id)
    return Outcome(APPLIED, "marked undeliverable", contact.id)


def profile(job: Job) -> Outcome:
    """Groups the person unticked on Mailchimp's profile page: off those internal lists
    (whoever is master for names). Names and mapped merge fields, only when the ESP is the
    master for them (`webhook_profile_master = "esp"`); a stale profile (an applied one
    fired later exists) changes nothing. Never consent, never joins a list."""
    event, session = job.event, job.session
    assert event.email is not None
    left = _unticked_groups(job)
    if left is not None:
        return left
    if job.settings.webhook_profile_master != "esp":
        log.info("profile webhook stored, not applied: the CRM is master for names")
        return Outcome(IGNORED, "profile master is the CRM")
    contact = resolve_contact(session, job.keyring, event.email)
    if contact is None:
        return Outcome(IGNORED, "profile for an unknown address")
    hmacs = {job.keyring.address_hmac(event.email), job.keyring.address_hmac(contact.email_key)}
    if inbox_store.applied_after(session, EventKind.PROFILE, hmacs, job.moment,
                                 other_than=job.event_key):
        return Outcome(IGNORED, "stale profile: a newer one was applied", contact.id)
    return Outcome(APPLIED, _names(job, contact), contact.id)


def _names(job: Job, contact: Contact) -> str:
    """Names and mapped merge fields from the body onto the contact; says which."""
    event, session = job.event, job.session
    fields = {tag: crm for crm, tag in job.merge_fields.items()}
    names: dict[str, str | None] = {}
    attributes: dict[str, str] = {}
    for tag, value in event.merges.items():
        crm_field = fields.get(tag)
        if crm_field in ("first_name", "last_name"):
            names[crm_field] = value.strip() or None
        elif crm_field is not None:
            attributes[crm_field] = value
    changed = sorted(name for name, value in names.items() if getattr(contact, name) != value)
    for name in changed:
        setattr(contact, name, names[name])
    if attributes and {**contact.attributes, **attributes} != contact.attributes:
        contact.attributes = {**contact.attributes, **attributes}
        changed.append("attributes")
    if changed:
        store.touch(contact)
        audit.record(session, actor=ACTOR, action="contact_updated", contact_id=contact.id,
                     fields=changed, channel=job.channel)
    return "profile updated" if changed else "profile unchanged"


def _unticked_groups(job: Job) -> Outcome | None:
    """The internal lists mapped to groups the body shows unticked, left; None when
    nothing was left (the profile's other effects follow as before)."""
    target = job.target  # the target of the event's audience (apply routed it)
    groups = chosen_groups(job.event) if target is not None and target.interests else {}
    if target is None or not groups:
        return None
    unticked = []
    for list_name in target.interests:
        group = target.interest_of(list_name)
        assert group is not None  # every list of `interests` maps to a group
        category, interest = group
        if category in groups and interest not in groups[category]:
            unticked.append(list_name)
    assert job.event.email is not None
    contact = resolve_contact(job.session, job.keyring, job.event.email) if unticked else None
    if contact is None:
        return None
    hmacs = {job.keyring.address_hmac(job.event.email),
             job.keyring.address_hmac(contact.email_key)}
    if inbox_store.applied_after(job.session, EventKind.PROFILE, hmacs, job.moment,
                                 other_than=job.event_key):
        return None
    left = lists.remove_memberships(job.session, [contact.id], actor=ACTOR,
                                    reason="unticked the group in Mailchimp's profile form",
                                    names=sorted(unticked)).get(contact.id, [])
    if not left:
        return None
    store.touch(contact)
    if job.settings.webhook_profile_master == "esp":
        profile_outcome = _names(job, contact)
        return Outcome(APPLIED, f"left {len(left)} list(s); {profile_outcome}", contact.id)
    return Outcome(APPLIED, f"left {len(left)} list(s) unticked in Mailchimp", contact.id)


def subscribe(job: Job) -> Outcome:
    """Mailchimp's double opt-in confirmation, recorded only when ALL of: the contact
    exists; syncd itself asked for the member as `pending` before fired_at and it is
    still pending (Mailchimp sent the confirmation mail at our request, rule 3); the
    event carries the click's evidence (ip_opt: an admin's or API subscribe has none,
    I13); and the ledger holds a request for that purpose (`given` or `confirmed`) at or
    before fired_at, newer than every withdrawal and suppression at or before it."""
    event, session = job.event, job.session
    assert event.email is not None
    contact = resolve_contact(session, job.keyring, event.email)
    if contact is None:
        return Outcome(IGNORED, "subscribe never creates consent")
    audience = job.audience
    state = push_state.pending(session, contact.id, audience) if audience else None
    # Mailchimp sends `subscribe` for a confirmation click, its own sign-up form and an
    # admin's or API subscribe alike; the body does not say which.
    asked = state.pending_requested_at if state is not None else None
    if state is None or state.esp_status != "pending" or asked is None or (
            as_utc(asked) > job.moment):
        return Outcome(IGNORED, "not a confirmation syncd asked for", contact.id)
    if not event.ip_opt:
        return Outcome(IGNORED, "subscribe without Mailchimp's opt-in evidence (no "
                                "ip_opt): an admin or API subscribe, not a confirmation",
                       contact.id)
    if not _open_request_at(session, job.keyring, contact, job.purpose, job.moment):
        return Outcome(IGNORED, "no open consent request at that moment", contact.id)
    ledger.append(session, contact, ConsentRecord(
        purpose=job.purpose, action=Action.CONFIRMED, occurred_at=job.moment,
        source=job.channel, ip=event.ip_opt,
        reason=("double opt-in confirmed through Mailchimp's confirmation mail that "
                "syncd asked for (evidence: ip_opt, fired_at)")),
        actor=ACTOR, dedupe_salt=job.event_key)
    assert audience is not None
    push_state.record_confirmation(session, contact.id, audience, event.ip_opt, job.moment)
    return Outcome(APPLIED, "double opt-in confirmation recorded", contact.id)


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
