"""The unsubscribe purge in Core SQL: the webhook hot path (issue 4: p99 < 25 ms at 200/s).

It writes exactly what the ORM path of `apply._Job.withdraw` writes through
`ledger.append`, `store.remove_from_lists`, `suppression.suppress`, `store.touch` and
`audit.record` (same rows, same dedupe, same audit entries, revision bumped), in the
caller's transaction, but with statements built once, bound parameters only, no ORM
objects and fewer round trips: one read of the recent consent events answers both
"already withdrawn?" and "confirmed after this event?", one read gives the memberships
with their lists, and the audit rows and the revision bump go out once at the end.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, insert, select, update

from syncd.clock import as_utc, utcnow
from syncd.consent import chain, ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.crm import suppression
from syncd.schema import (
    AuditEntry,
    ConsentEvent,
    Contact,
    InternalList,
    ListMembership,
)

_WITHDRAWN, _CONFIRMED = str(Action.WITHDRAWN), str(Action.CONFIRMED)

# The contact and its recent withdrawals/confirmations in one round trip.
_CONTACT_RECENT = (
    select(Contact.id, Contact.email_key, ConsentEvent.purpose, ConsentEvent.action,
           ConsentEvent.occurred_at)
    .select_from(Contact)
    .outerjoin(ConsentEvent, and_(ConsentEvent.contact_id == Contact.id,
                                  ConsentEvent.action.in_([_WITHDRAWN, _CONFIRMED]),
                                  ConsentEvent.occurred_at >= bindparam("since")))
    .where(Contact.email_key == bindparam("email_key")))
_MEMBERSHIPS = (select(InternalList.id, InternalList.name, InternalList.purpose,
                       InternalList.marketing)
                .join(ListMembership, ListMembership.list_id == InternalList.id)
                .where(ListMembership.contact_id == bindparam("contact_id")))
_UNLIST = delete(ListMembership).where(
    ListMembership.contact_id == bindparam("contact_id"),
    ListMembership.list_id.in_(bindparam("list_ids", expanding=True)))
_TOUCH = (update(Contact).where(Contact.id == bindparam("contact_id"))
          .values(revision=Contact.revision + bindparam("bumps"),
                  updated_at=bindparam("now")))
_AUDIT = insert(AuditEntry)


@dataclass(frozen=True)
class KnownContact:
    id: int
    email_key: str
    # (purpose, action, occurred_at) of its withdrawals and confirmations since `since`
    recent: list[tuple[str, str, datetime]]


def find(session: Any, email_key: str, since: datetime) -> KnownContact | None:
    """The contact with this address and its consent events since `since`."""
    rows = _conn(session).execute(_CONTACT_RECENT, {"email_key": email_key,
                                                    "since": since}).all()
    if not rows:
        return None
    recent = [(purpose, action, as_utc(at)) for _, _, purpose, action, at in rows
              if purpose is not None]
    return KnownContact(rows[0][0], rows[0][1], recent)


def _conn(session: Any) -> Connection:
    connection: Connection = session.connection()
    return connection


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
    window: timedelta  # see apply.SAME_WITHDRAWAL_WINDOW


def withdraw(session: Any, contact: KnownContact, hmacs: list[str], w: Withdrawal) -> tuple[
        bool, bool]:
    """Withdraw, purge and suppress one known contact. Returns (changed, suppressed):
    whether the ledger or the lists changed, and whether a suppression was added."""
    conn = _conn(session)
    audits: list[dict[str, Any]] = []
    now = utcnow()
    bumps = 0
    recent = contact.recent  # read by `find` with since = moment - window
    changed = False
    same = _same_withdrawal_recorded(recent, w)
    # The contact first, the ledger's chain head last (see chain.py): the head is held
    # from the append to the commit, so everything else of the purge comes before it.
    chain.lock_contacts(session, [contact.id])
    # A consent confirmed AFTER this event keeps the lists of its purpose (I6).
    newer = {purpose for purpose, action, at in recent
             if action == _CONFIRMED and at > w.moment}
    by_purpose: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for list_id, name, purpose, marketing in conn.execute(_MEMBERSHIPS,
                                                          {"contact_id": contact.id}):
        wanted = marketing if w.abuse else purpose == w.purpose
        if wanted and purpose not in newer:
            by_purpose[purpose].append((list_id, name))
    if by_purpose:
        conn.execute(_UNLIST, {"contact_id": contact.id,
                               "list_ids": [i for rows in by_purpose.values() for i, _ in rows]})
        changed = True
        for purpose in sorted(by_purpose):  # one entry per purpose, as remove_from_lists
            bumps += 1
            audits.append(_audit(now, w.actor, "lists_removed", contact.id,
                                 lists=sorted(name for _, name in by_purpose[purpose]),
                                 reason=w.why))
    if w.deleted:
        audits.append(_audit(now, w.actor, "esp_member_deleted", contact.id,
                             channel=w.channel))
    suppressed = False
    for address_hmac in hmacs:
        suppressed |= suppression.suppress(
            session, address_hmac=address_hmac, purpose=w.suppression_scope,
            reason=w.suppression_reason, actor=w.actor, contact_id=contact.id,
            created_at=w.moment, renew=not same)
    if suppressed:
        bumps += 1  # a new suppression changes what the sync may push
    if not same and chain.append_one(
            session, ledger.event_row(contact.id, contact.email_key, w.record, w.dedupe_salt),
            contacts_locked=True):
        changed = True
        bumps += 1
        audits.insert(0, _audit(now, w.actor, f"consent_{w.record.action}", contact.id,
                                purpose=w.record.purpose, source=w.record.source,
                                occurred_at=w.record.occurred_at.isoformat()))
    if audits:
        conn.execute(_AUDIT, audits)  # one executemany
    if bumps:
        conn.execute(_TOUCH, {"contact_id": contact.id, "bumps": bumps, "now": now})
    return changed, suppressed


def _audit(at: datetime, actor: str, action: str, contact_id: int | None,
           **details: Any) -> dict[str, Any]:
    return {"at": at, "actor": actor, "action": action, "contact_id": contact_id,
            "details": details}


def _same_withdrawal_recorded(recent: list[tuple[str, str, datetime]], w: Withdrawal) -> bool:
    """`apply._same_withdrawal_recorded` over rows already read: a withdrawal of this
    purpose within the window with no confirmation in between."""
    confirmed = [at for purpose, action, at in recent
                 if purpose == w.purpose and action == _CONFIRMED]
    for purpose, action, other in recent:
        if purpose != w.purpose or action != _WITHDRAWN:
            continue
        if not w.moment - w.window <= other <= w.moment + w.window:
            continue
        low, high = sorted((other, w.moment))
        if not any(low < at <= high for at in confirmed):
            return True
    return False
