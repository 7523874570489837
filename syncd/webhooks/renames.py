"""Address changes (`upemail`): the contact keeps its history under the new address, and
events addressed to an old address follow stored renames to the contact that holds it.

Mailchimp does not promise delivery order: a later rename may have arrived first (the
change ends where the renames end), and events for the new address may have arrived
before the rename (re-applied once it is known). Only keyed hashes of addresses are kept
outside `contacts`, so the addresses of a stored rename are read from its raw body."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from syncd.clock import as_utc
from syncd.crm import address_history, store, suppression
from syncd.keys import Keyring
from syncd.schema import Contact, InboxSource, LedgerChannel
from syncd.store import audit, push_state
from syncd.store import inbox as inbox_store
from syncd.webhooks.job import ACTOR, APPLIED, Job, Outcome, Unappliable
from syncd.webhooks.mailchimp_form import EventKind, InboundEvent, parse_body

MAX_RENAMES = 10
ADDRESSED_KINDS = (EventKind.SUBSCRIBE, EventKind.UNSUBSCRIBE, EventKind.PROFILE,
                   EventKind.CLEANED)
# Applies one stored event again (syncd.webhooks.apply.apply, passed in: it dispatches here).
Reapply = Callable[[InboundEvent, str, LedgerChannel], Outcome]


def _parsed(body: str | None) -> InboundEvent:
    return parse_body((body or "").encode("utf-8"))


def _renamed_to(session: Session, keyring: Keyring, address: str,
                after: datetime | None, other_than: str | None = None
                ) -> tuple[str, datetime | None] | None:
    """The address a stored `upemail` (not the one with dedupe key `other_than`) moved
    `address` to (the latest, or the first fired after `after`), with its moment."""
    for stored in inbox_store.settled_bodies(
            session, keyring.address_hmac(address), [EventKind.UPEMAIL], fired_after=after,
            newest_first=after is None, limit=5):
        if stored.dedupe_key == other_than:
            continue
        renamed = _parsed(stored.body)
        if renamed.old_email == address and renamed.new_email and renamed.new_email != address:
            return renamed.new_email, stored.fired_at
    return None


def _follow(session: Session, keyring: Keyring, address: str, after: datetime | None,
            found: Callable[[str], bool], *, other_than: str | None = None) -> str | None:
    """Follow renames of `address` (those fired after `after`, each after the one
    before; or the latest of each) until `found` accepts an address; None if none."""
    seen: set[str] = {address}
    current, moment = address, after
    for _ in range(MAX_RENAMES):
        step = _renamed_to(session, keyring, current, moment, other_than)
        # In time order (`after`) each step is later than the one before, so an address
        # met again is a person back at an address they had, not a loop (MAX_RENAMES
        # bounds the walk); only the latest-of-each walk can cycle.
        if step is None or (after is None and step[0] in seen):
            return None
        current = step[0]
        if after is not None:
            moment = as_utc(step[1]) if step[1] else moment
        seen.add(current)
        if found(current):
            return current
    return None


def resolve_contact(session: Session, keyring: Keyring, address: str,
                    other_than: str | None = None) -> Contact | None:
    """The contact with this address, or the one it was renamed to by an `upemail` that
    arrived before this event (not the one with dedupe key `other_than`)."""
    contact = store.find_contact(session, address)
    if contact is not None:
        return contact
    holder: list[Contact] = []

    def held(candidate: str) -> bool:
        found = store.find_contact(session, candidate)
        holder.extend([found] if found is not None else [])
        return found is not None

    _follow(session, keyring, address, None, held, other_than=other_than)
    return holder[0] if holder else None


def _final_address(session: Session, keyring: Keyring, address: str, after: datetime
                   ) -> str | None:
    """Where later renames of `address` lead; None if it was never renamed."""
    last: list[str] = []

    def keep_going(candidate: str) -> bool:
        last.append(candidate)
        return False

    _follow(session, keyring, address, after, keep_going)
    return last[-1] if last else None


def upemail(job: Job, reapply: Reapply) -> Outcome:
    event, session, keyring = job.event, job.session, job.keyring
    if event.old_email is None or event.new_email is None:
        raise Unappliable("upemail event lacks data[old_email] or data[new_email]")
    new_key, new_display = event.new_email, event.new_email_display or event.new_email
    # A later rename of the new address may have arrived first: end where it ends.
    final = _final_address(session, keyring, new_key, job.moment)
    if final is not None:
        new_key, new_display = final, final
    new_hmac = keyring.address_hmac(new_key)
    suppression.carry_over(session, old_hmac=keyring.address_hmac(event.old_email),
                           new_hmac=new_hmac, actor=ACTOR, contact_id=None)
    # The contact of the old address by renames other than this one, else the one at the
    # new address or where later renames of it end. Through this rename itself the walk
    # went on from its new address by older renames: after an address was given up and
    # taken by someone else (dirk -> cleo, then ann -> dirk), a rename of cleo's member
    # walked cleo -> ann -> dirk and moved ann's contact (found by the system model).
    contact = (resolve_contact(session, keyring, event.old_email, other_than=job.event_key)
               or store.find_contact(session, event.new_email)
               or store.find_contact(session, new_key))
    if contact is None:
        return Outcome(APPLIED, "unknown address: suppressions carried over")
    if contact.email_key != new_key:
        if store.find_contact(session, new_key) is not None:
            raise Unappliable("upemail: the new address belongs to another contact")
        old_hmac = keyring.address_hmac(contact.email_key)
        address_history.remember(session, contact_id=contact.id, old_hmac=old_hmac,
                                 at=job.moment)
        contact.email_key, contact.email_display = new_key, new_display
        contact.undeliverable_at = None  # rule 9: blocked only until the address changes
        store.touch(contact)
        session.flush()
        suppression.carry_over(session, old_hmac=old_hmac, new_hmac=new_hmac, actor=ACTOR,
                               contact_id=contact.id)
        audit.record(session, actor=ACTOR, action="address_changed", contact_id=contact.id,
                     channel=job.channel)
    push_state.follow_address(session, contact.id, job.audience, new_key, job.moment)
    _replay_arrived_for(job, new_hmac, reapply)
    return Outcome(APPLIED, "address changed", contact.id)


def _replay_arrived_for(job: Job, address_hmac: str, reapply: Reapply) -> None:
    """Events for the new address that arrived before this upemail found no contact;
    apply them now (idempotent), so arrival order does not matter."""
    # Stored under the keyed hash of the new address: each is addressed to it.
    for stored in inbox_store.settled_bodies(job.session, address_hmac, ADDRESSED_KINDS):
        earlier = _parsed(stored.body)
        channel = (LedgerChannel.RECONCILIATION if stored.source == InboxSource.RECONCILIATION
                   else LedgerChannel.ESP_WEBHOOK)
        if reapply(earlier, stored.dedupe_key, channel).status == APPLIED:
            inbox_store.set_status_by_key(job.session, [stored.dedupe_key], APPLIED)

