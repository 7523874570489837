"""Read-side views of contacts: what we hold on a person and, per purpose, whether we may
mail them and why (the pure policy's words). Used by `syncd contacts` and the demo.

Listing pages through contacts by id in chunks, so memory stays bounded for any size."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from syncd.config import Settings
from syncd.consent import ledger
from syncd.consent.policy import Decision, decide
from syncd.consent.standing import decide_for
from syncd.crm import suppression
from syncd.keys import Keyring
from syncd.schema import ConsentEvent, Contact, InternalList, ListMembership

PAGE_SIZE = 500


@dataclass(frozen=True)
class PurposeView:
    eligible: bool
    standing: str
    reason: str

    @classmethod
    def of(cls, decision: Decision) -> PurposeView:
        return cls(decision.eligible, str(decision.standing), decision.reason)


@dataclass(frozen=True)
class Block:
    purpose: str
    reason: str
    since: datetime


@dataclass(frozen=True)
class ContactView:
    contact_id: int
    email: str
    first_name: str | None
    last_name: str | None
    crm_id: str | None
    is_customer: bool
    revision: int
    undeliverable_since: datetime | None
    lists: list[str]
    purposes: dict[str, PurposeView]
    suppressions: list[Block]
    history: list[dict[str, Any]]

    @property
    def suppressed(self) -> bool:
        return bool(self.suppressions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.contact_id, "email": self.email, "first_name": self.first_name,
            "last_name": self.last_name, "crm_id": self.crm_id, "customer": self.is_customer,
            "revision": self.revision, "lists": self.lists,
            "undeliverable": self.undeliverable_since is not None,
            "undeliverable_since": _iso(self.undeliverable_since),
            "suppressed": self.suppressed,
            "suppressions": [{"purpose": b.purpose, "reason": b.reason, "since": _iso(b.since)}
                             for b in self.suppressions],
            "purposes": {name: {"eligible": view.eligible, "standing": view.standing,
                                "reason": view.reason}
                         for name, view in sorted(self.purposes.items())},
            "history": self.history,
        }


@dataclass(frozen=True)
class ContactRow:
    """One line of `contacts list`: eligibility for one purpose."""

    contact_id: int
    email: str
    lists: list[str]
    purpose: str
    eligible: bool
    standing: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.contact_id, "email": self.email, "lists": self.lists,
                "purpose": self.purpose, "eligible": self.eligible, "standing": self.standing,
                "reason": self.reason}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _event(event: ConsentEvent) -> dict[str, Any]:
    return {
        "purpose": event.purpose, "action": event.action, "at": _iso(event.occurred_at),
        "recorded_at": _iso(event.recorded_at), "source": event.source,
        "form_url": event.form_url, "text_version": event.text_version,
        "privacy_notice_version": event.privacy_notice_version, "ip": event.ip,
        "confirmation_proof": event.confirmation_token_hash is not None,
        "reason": event.reason,
    }


def show(session: Session, settings: Settings, keyring: Keyring, email_key: str, *,
         now: datetime) -> ContactView | None:
    """Everything about one contact, or None when there is no contact for the address."""
    contact = session.scalar(select(Contact).where(Contact.email_key == email_key))
    if contact is None:
        return None
    address_hmac = keyring.address_hmac(contact.email_key)
    blocks = suppression.facts_by_hmac(session, [address_hmac]).get(address_hmac, [])
    purposes = {
        purpose: PurposeView.of(decide_for(session, contact, purpose=purpose, keyring=keyring,
                                           now=now))
        for purpose in settings.purposes
    }
    lists = _lists_by_contact(session, [contact.id]).get(contact.id, [])
    return ContactView(
        contact_id=contact.id, email=contact.email_display, first_name=contact.first_name,
        last_name=contact.last_name, crm_id=contact.crm_id, is_customer=contact.is_customer,
        revision=contact.revision, undeliverable_since=contact.undeliverable_at, lists=lists,
        purposes=purposes,
        suppressions=sorted((Block(b.purpose, b.reason, b.created_at) for b in blocks),
                            key=lambda b: (b.since, b.purpose)),
        history=[_event(e) for e in ledger.history(session, contact.id)],
    )


def _lists_by_contact(session: Session, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    rows = session.execute(
        select(ListMembership.contact_id, InternalList.name)
        .join(InternalList, InternalList.id == ListMembership.list_id)
        .where(ListMembership.contact_id.in_(ids))
        .order_by(InternalList.name))
    for contact_id, name in rows:
        found.setdefault(contact_id, []).append(name)
    return found


def rows(session: Session, keyring: Keyring, *, purpose: str, now: datetime,
         eligible: bool | None = None, list_name: str | None = None, limit: int | None = None,
         page_size: int = PAGE_SIZE, after: int = 0) -> Iterator[ContactRow]:
    """Contacts in id order (ids above `after`: the next page) with their eligibility for
    `purpose`, filtered; one page of contacts in memory at a time."""
    produced = 0
    while True:
        query = select(Contact).where(Contact.id > after).order_by(Contact.id).limit(page_size)
        if list_name is not None:
            query = query.where(Contact.id.in_(
                select(ListMembership.contact_id)
                .join(InternalList, InternalList.id == ListMembership.list_id)
                .where(InternalList.name == list_name)))
        page = list(session.scalars(query))
        if not page:
            return
        after = page[-1].id
        ids = [c.id for c in page]
        facts = ledger.facts_by_contact(session, ids)
        hmacs = {c.id: keyring.address_hmac(c.email_key) for c in page}
        blocks = suppression.facts_by_hmac(session, hmacs.values())
        lists = _lists_by_contact(session, ids)
        for contact in page:
            decision = decide(purpose=purpose, events=facts.get(contact.id, []),
                              suppressions=blocks.get(hmacs[contact.id], []),
                              is_customer=contact.is_customer,
                              undeliverable_since=contact.undeliverable_at, now=now)
            if eligible is not None and decision.eligible is not eligible:
                continue
            yield ContactRow(contact.id, contact.email_display, lists.get(contact.id, []),
                             purpose, decision.eligible, str(decision.standing), decision.reason)
            produced += 1
            if limit is not None and produced >= limit:
                return
        session.expunge_all()
