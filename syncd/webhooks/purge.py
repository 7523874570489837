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
from syncd.crm import suppression
from syncd.schema import Contact
from syncd.store import audit, chain_hold, contacts, lists, withdrawal
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


def _taken(contact: RecentConsent, memberships: list[lists.ListRow],
           purposes: set[str] | None, moment: datetime) -> dict[str, list[lists.ListRow]]:
    """The memberships to remove, by purpose: of these purposes (None: every marketing
    list), except a purpose confirmed after `moment` (I6)."""
    newer = {purpose for purpose, action, at in contact.recent
             if action == Action.CONFIRMED and at > moment}
    by_purpose: dict[str, list[lists.ListRow]] = defaultdict(list)
    for member in memberships:
        wanted = member.marketing if purposes is None else member.purpose in purposes
        if wanted and member.purpose not in newer:
            by_purpose[member.purpose].append(member)
    return by_purpose


def _list_audits(contact_id: int, by_purpose: dict[str, list[lists.ListRow]], *, actor: str,
                 why: str, now: datetime) -> list[audit.AuditRow]:
    return [audit.AuditRow(actor=actor, action="lists_removed", contact_id=contact_id, at=now,
                           details={"lists": sorted(m.name for m in by_purpose[purpose]),
                                    "reason": why})
            for purpose in sorted(by_purpose)]


def unlist(session: Session, contact: RecentConsent, purposes: set[str] | None, *,
           moment: datetime, actor: str, why: str, now: datetime) -> list[audit.AuditRow]:
    """Remove the contact from the lists of these purposes (None: every marketing list),
    except a purpose confirmed after `moment` (I6). Returns the audit entries to write,
    one per purpose, as the list removal writes them."""
    by_purpose = _taken(contact, lists.lists_of(session, contact.id), purposes, moment)
    if not by_purpose:
        return []
    lists.unlist(session, contact.id,
                 [m.id for rows in by_purpose.values() for m in rows])
    return _list_audits(contact.id, by_purpose, actor=actor, why=why, now=now)


def withdraw(session: Session, contact: RecentConsent, hmacs: list[str], w: Withdrawal, *,
             view: withdrawal.PurgeRead | None = None) -> tuple[bool, bool]:
    """Withdraw, purge and suppress one known contact. Returns (changed, suppressed):
    whether the ledger or the lists changed, and whether a suppression was added.
    `view`: what withdrawal.read found (the contact locked, its memberships read)."""
    now = utcnow()
    same = ledger.same_withdrawal_recorded(contact.recent, purpose=w.purpose,
                                           moment=w.moment, window=w.window)
    # `same` is judged by `w.purpose` alone; an abuse complaint's suppression covers every
    # purpose, and a consent of another purpose confirmed since the suppression's moment
    # must lose to this complaint (rule 6): it always moves the suppression to its moment
    # when that is newer. Its event of `w.purpose` is still not written twice.
    renew = w.abuse or not same
    # Core writes below: ORM objects this session holds go out first, and the contact's
    # bumped columns are read again afterwards.
    session.flush()
    if view is None:
        # The contact first, the ledger's chain head last (syncd.store.ledger): the head
        # is held from the append to the commit, so the rest of the purge comes before it.
        ledger_store.lock_contacts(session, [contact.id])
        memberships = lists.lists_of(session, contact.id)
    else:
        memberships = view.memberships
    by_purpose = _taken(contact, memberships, None if w.abuse else {w.purpose}, w.moment)
    taken = [m.id for rows in by_purpose.values() for m in rows]
    if view is not None:  # the next purpose's withdrawal sees these gone
        view.memberships = [m for m in memberships if m.id not in taken]
    audits = _list_audits(contact.id, by_purpose, actor=w.actor, why=w.why, now=now)
    bumps = len(audits)
    if w.deleted:
        audits.append(audit.AuditRow(actor=w.actor, action="esp_member_deleted",
                                     contact_id=contact.id, at=now,
                                     details={"channel": w.channel}))
    row = None if same else ledger.event_row(contact.id, contact.email_key, w.record,
                                             w.dedupe_salt)
    if session.get_bind().dialect.name == "postgresql":
        # The bump before the chain head, so that the head is held for the one write and
        # the commit only: a new withdrawal counted as changing the suppression too (when
        # it does not, the revision moves one more than needed: it promises order, not a
        # count). Only a repeated withdrawal can change more than counted; it takes no head.
        counted = bumps + 2 * (row is not None)
        _bump(session, contact.id, counted, now)
        suppressed, appended = _write_postgres(session, contact.id, taken, hmacs, w,
                                               row=row, renew=renew, audits=audits,
                                               now=now)
        _bump(session, contact.id, bumps + suppressed + appended - counted, now)
        return bool(taken) or appended, suppressed
    if taken:
        lists.unlist(session, contact.id, taken)
    suppressed = suppression.suppress(
        session, hmacs, purpose=w.suppression_scope, reason=w.suppression_reason,
        actor=w.actor, contact_id=contact.id, created_at=w.moment, renew=renew)
    appended = row is not None and bool(ledger_store.append(session, [row],
                                                            contacts_locked=True))
    if appended:
        audits.insert(0, ledger.audit_row(w.actor, contact.id, w.record, now))
    audit.append(session, audits)
    # A new suppression changes what the sync may push.
    _bump(session, contact.id, bumps + suppressed + appended, now)
    return bool(taken) or appended, suppressed


def _bump(session: Session, contact_id: int, bumps: int, now: datetime) -> None:
    """The contact changed (`bumps` > 0): the sync looks at it again."""
    if bumps <= 0:
        return
    contacts.bump_revision(session, contact_id, bumps, now)
    loaded = session.identity_map.get(identity_key(Contact, contact_id))
    if loaded is not None:
        session.expire(loaded, ["revision", "updated_at"])


def _write_postgres(session: Session, contact_id: int, taken: list[int], hmacs: list[str],
                    w: Withdrawal, *, row: dict[str, object] | None, renew: bool,
                    audits: list[audit.AuditRow], now: datetime) -> tuple[bool, bool]:
    """The same writes as SQLite's path in one statement after the head's lock
    (syncd.store.withdrawal); (suppressed, appended)."""
    head = ledger_store.lock_head(session) if row is not None else None
    new_head = ledger_store.link([row], head) if row is not None and head else None
    consent = ledger.audit_row(w.actor, contact_id, w.record, now)
    written = withdrawal.write_postgres(
        session, contact_id=contact_id, list_ids=taken, hmacs=hmacs,
        scope=w.suppression_scope, reason=w.suppression_reason, moment=w.moment,
        renew=renew, event=row, head=new_head or ledger_store.Head(0, "", None),
        actor=w.actor, consent_action=consent.action, consent_details=consent.details,
        list_audits=[(a.action, a.details) for a in audits], now=now)
    if written.appended and new_head is not None:
        chain_hold.moved(session, new_head)
    return written.suppressions > 0, written.appended


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
    view = withdrawal.read(session, event.email, since)
    if view is None:  # an address renamed by an `upemail` that arrived first
        renamed = resolve_contact(session, keyring, event.email)
        view = withdrawal.read(session, renamed.email_key, since) if renamed else None
    if view is None:
        added = False
        for scope in scopes:
            added = suppression.suppress(session, [keyring.address_hmac(event.email)],
                                         purpose=scope, reason=kind, actor=ACTOR,
                                         created_at=job.moment) or added
        return Outcome(APPLIED if added else IGNORED, "unknown address: suppression only"
                       if added else "already in effect")
    known = view.contact
    # One person, every address (I12): the addresses they had before too.
    hmacs = sorted({keyring.address_hmac(event.email), keyring.address_hmac(known.email_key),
                    *view.earlier_hmacs})
    # What Mailchimp now has, written before the withdrawals: the last of them holds the
    # chain head until the commit (syncd.store.ledger).
    gone = "cleaned" if event.kind is EventKind.CLEANED else "unsubscribed"
    job.learn_status(known.id, "archived" if deleted else gone)
    changed = added_any = False
    # Only the purposes of the audience's target (an abuse complaint: every list and
    # every purpose suppressed, whichever audience it came from).
    for index, purpose in enumerate(job.purposes):
        record = ConsentRecord(
            purpose=purpose, action=Action.WITHDRAWN, occurred_at=job.moment,
            source=job.channel, reason=(reason + " (deleted at ESP)")[:200] if deleted
            else reason, campaign_id=event.campaign_id)
        one_changed, one_added = withdraw(session, known, hmacs, Withdrawal(
            purpose=purpose, moment=job.moment, record=record,
            dedupe_salt=job.event_key if index == 0 else f"{job.event_key}:{purpose}",
            why=f"{event.kind} ({reason})", abuse=abuse, deleted=deleted and index == 0,
            channel=job.channel, actor=ACTOR,
            suppression_scope=scopes[0] if abuse else purpose,
            suppression_reason=kind, window=SAME_WITHDRAWAL_WINDOW), view=view)
        changed, added_any = changed or one_changed, added_any or one_added
    if not (changed or added_any):
        return Outcome(IGNORED, "already in effect", known.id)
    return Outcome(APPLIED, "withdrawn and purged", known.id)
