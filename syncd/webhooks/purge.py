"""The withdrawal (an unsubscribe, an abuse complaint, a deletion at Mailchimp, a purpose
unticked on the preference page): the one implementation, on the webhook hot path.

Rules (docs/consent-rules.md): a withdrawal in the ledger for the purpose, dated when it
happened; off every internal list of that purpose except a purpose with a consent
confirmed AFTER this event (a newer confirmed consent beats an older withdrawal, I6);
a suppression entry for every address the person ever had (rule 5, I3, I12). An abuse
complaint is an objection to direct marketing (Art. 21(2)-(3)): off every marketing
list, suppressed for every purpose. Written in the caller's transaction with statements
built once and few round trips: one read of the recent consent events answers both
"already withdrawn?" and "confirmed after this event?", one read gives the memberships
with their lists, and the audit rows and the revision bump go out once at the end."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from syncd.clock import utcnow
from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.crm import address_history, suppression
from syncd.schema import Contact
from syncd.store import audit, contacts, lists
from syncd.store import ledger as ledger_store
from syncd.store.ledger import RecentConsent
from syncd.webhooks.job import ACTOR, APPLIED, IGNORED, SAME_WITHDRAWAL_WINDOW, Job, Outcome
from syncd.webhooks.mailchimp_form import EventKind
from syncd.webhooks.renames import resolve_contact


@dataclass(frozen=True)
class Withdrawal:
    purpose: str
    moment: datetime
    record: ConsentRecord
    dedupe_salt: str
    why: str  # the list removal's reason
    abuse: bool  # every marketing list, suppressed for every purpose
    deleted: bool
    channel: str
    actor: str
    suppression_scope: str
    suppression_reason: str
    window: timedelta  # see job.SAME_WITHDRAWAL_WINDOW


def find(session: Session, email_key: str, since: datetime) -> RecentConsent | None:
    """The contact with this address and its consent events since `since`."""
    return ledger_store.recent_by_address(session, email_key, since)


def unlist(session: Session, contact: RecentConsent, purposes: set[str] | None, *,
           moment: datetime, actor: str, why: str, now: datetime) -> list[audit.AuditRow]:
    """Remove the contact from the lists of these purposes (None: every marketing list),
    except a purpose confirmed after `moment` (I6). Returns the audit entries to write,
    one per purpose, as the list removal writes them."""
    newer = {purpose for purpose, action, at in contact.recent
             if action == Action.CONFIRMED and at > moment}
    by_purpose: dict[str, list[lists.ListRow]] = defaultdict(list)
    for member in lists.lists_of(session, contact.id):
        wanted = member.marketing if purposes is None else member.purpose in purposes
        if wanted and member.purpose not in newer:
            by_purpose[member.purpose].append(member)
    if not by_purpose:
        return []
    lists.unlist(session, contact.id,
                 [m.id for rows in by_purpose.values() for m in rows])
    return [audit.AuditRow(actor=actor, action="lists_removed", contact_id=contact.id, at=now,
                           details={"lists": sorted(m.name for m in by_purpose[purpose]),
                                    "reason": why})
            for purpose in sorted(by_purpose)]


def withdraw(session: Session, contact: RecentConsent, hmacs: list[str], w: Withdrawal
             ) -> tuple[bool, bool]:
    """Withdraw, purge and suppress one known contact. Returns (changed, suppressed):
    whether the ledger or the lists changed, and whether a suppression was added."""
    now = utcnow()
    same = ledger.same_withdrawal_recorded(contact.recent, purpose=w.purpose,
                                           moment=w.moment, window=w.window)
    # Core writes below: ORM objects this session holds go out first, and the contact's
    # bumped columns are read again afterwards.
    session.flush()
    # The contact first, the ledger's chain head last (syncd.store.ledger): the head is
    # held from the append to the commit, so everything else of the purge comes before it.
    ledger_store.lock_contacts(session, [contact.id])
    audits = unlist(session, contact, None if w.abuse else {w.purpose}, moment=w.moment,
                    actor=w.actor, why=w.why, now=now)
    changed = bool(audits)
    bumps = len(audits)
    if w.deleted:
        audits.append(audit.AuditRow(actor=w.actor, action="esp_member_deleted",
                                     contact_id=contact.id, at=now,
                                     details={"channel": w.channel}))
    suppressed = suppression.suppress(
        session, hmacs, purpose=w.suppression_scope, reason=w.suppression_reason,
        actor=w.actor, contact_id=contact.id, created_at=w.moment, renew=not same)
    bumps += suppressed  # a new suppression changes what the sync may push
    if not same and ledger_store.append(
            session, [ledger.event_row(contact.id, contact.email_key, w.record,
                                       w.dedupe_salt)], contacts_locked=True):
        changed = True
        bumps += 1
        audits.insert(0, ledger.audit_row(w.actor, contact.id, w.record, now))
    audit.append(session, audits)
    if bumps:
        contacts.bump_revision(session, contact.id, bumps, now)
        loaded = session.identity_map.get(identity_key(Contact, contact.id))
        if loaded is not None:
            session.expire(loaded, ["revision", "updated_at"])
    return changed, suppressed


def withdraw_event(job: Job) -> Outcome:
    """An unsubscribe, an abuse complaint (`cleaned` with reason abuse, too) or a deletion
    at Mailchimp (`action=delete`)."""
    event, session, keyring = job.event, job.session, job.keyring
    assert event.email is not None
    abuse = event.is_abuse
    deleted = event.action == "delete"
    # `is_abuse` reads the reason, so an event without one is never an abuse complaint.
    reason = event.reason or "unsubscribe"
    scopes = (suppression.ALL_PURPOSES,) if abuse else job.purposes
    kind = "abuse" if abuse else ("esp_delete" if deleted else str(event.kind))
    since = job.moment - SAME_WITHDRAWAL_WINDOW
    known = find(session, event.email, since)
    if known is None:  # an address renamed by an `upemail` that arrived first
        renamed = resolve_contact(session, keyring, event.email)
        known = find(session, renamed.email_key, since) if renamed is not None else None
    if known is None:
        added = False
        for scope in scopes:
            added = suppression.suppress(session, [keyring.address_hmac(event.email)],
                                         purpose=scope, reason=kind, actor=ACTOR,
                                         created_at=job.moment) or added
        return Outcome(APPLIED if added else IGNORED, "unknown address: suppression only"
                       if added else "already in effect")
    # One person, every address (I12): the addresses they had before too.
    hmacs = {keyring.address_hmac(event.email), keyring.address_hmac(known.email_key),
             *address_history.hmacs_of(session, known.id)}
    changed = added_any = False
    # Only the purposes of the audience's target (an abuse complaint: every list and
    # every purpose suppressed, whichever audience it came from).
    for index, purpose in enumerate(job.purposes):
        record = ConsentRecord(
            purpose=purpose, action=Action.WITHDRAWN, occurred_at=job.moment,
            source=job.channel, reason=(reason + " (deleted at ESP)")[:200] if deleted
            else reason, campaign_id=event.campaign_id)
        one_changed, one_added = withdraw(session, known, sorted(hmacs), Withdrawal(
            purpose=purpose, moment=job.moment, record=record,
            dedupe_salt=job.event_key if index == 0 else f"{job.event_key}:{purpose}",
            why=f"{event.kind} ({reason})", abuse=abuse, deleted=deleted and index == 0,
            channel=job.channel, actor=ACTOR,
            suppression_scope=scopes[0] if abuse else purpose,
            suppression_reason=kind, window=SAME_WITHDRAWAL_WINDOW))
        changed, added_any = changed or one_changed, added_any or one_added
    gone = "cleaned" if event.kind is EventKind.CLEANED else "unsubscribed"
    job.learn_status(known.id, "archived" if deleted else gone)
    if not (changed or added_any):
        return Outcome(IGNORED, "already in effect", known.id)
    return Outcome(APPLIED, "withdrawn and purged", known.id)
