"""Read-side views of contacts: what we hold on a person and, per purpose, whether we may
mail them and why (the pure policy's words). Used by `syncd contacts` and the demo.

Listing pages through contacts by id in chunks, so memory stays bounded for any size."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from syncd.config import Settings
from syncd.consent import facts, ledger
from syncd.consent.policy import Decision
from syncd.keys import Keyring
from syncd.schema import ConsentEvent
from syncd.store import contacts, lists

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
    # Per soft opt-in target (rule 11): its basis in words, and the purchases it rests on.
    soft_opt_in: dict[str, PurposeView] = field(default_factory=dict)
    purchases: list[dict[str, Any]] = field(default_factory=list)

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
            "soft_opt_in": {name: {"eligible": view.eligible, "standing": view.standing,
                                   "reason": view.reason}
                            for name, view in sorted(self.soft_opt_in.items())},
            "purchases": self.purchases,
        }


@dataclass(frozen=True)
class ContactLine:
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
    contact = contacts.by_key(session, email_key)
    if contact is None:
        return None
    subject = facts.subject(contact)
    found = facts.gather(session, [subject], keyring)
    blocks = found.suppressions.get(contact.id, ())
    return ContactView(
        contact_id=contact.id, email=contact.email_display, first_name=contact.first_name,
        last_name=contact.last_name, crm_id=contact.crm_id, is_customer=contact.is_customer,
        revision=contact.revision, undeliverable_since=contact.undeliverable_at,
        lists=lists.names_of(session, contact.id),
        purposes={purpose: PurposeView.of(found.decide(subject, purpose=purpose, now=now))
                  for purpose in settings.purposes},
        suppressions=sorted((Block(b.purpose, b.reason, b.created_at) for b in blocks),
                            key=lambda b: (b.since, b.purpose)),
        history=[_event(e) for e in ledger.history(session, contact.id)],
        soft_opt_in={target.name: PurposeView.of(found.decide_soft_opt_in(
            subject, purpose=target.purposes[0], now=now, months=target.soft_opt_in_months))
            for target in settings.sync_targets if target.basis == "soft_opt_in"},
        purchases=[{"date": p.on.isoformat(), "category": p.category, "paid": p.paid}
                   for p in found.purchases.get(contact.id, ())],
    )


def rows(session: Session, keyring: Keyring, *, purpose: str, now: datetime,
         eligible: bool | None = None, list_name: str | None = None, limit: int | None = None,
         page_size: int = PAGE_SIZE, after: int = 0) -> Iterator[ContactLine]:
    """Contacts in id order (ids above `after`: the next page) with their eligibility for
    `purpose`, filtered; one page of contacts in memory at a time."""
    produced = 0
    while True:
        page = contacts.page(session, after=after, limit=page_size, on_list=list_name)
        if not page:
            return
        after = page[-1].id
        subjects = [facts.subject(c) for c in page]
        found = facts.gather(session, subjects, keyring)
        names = lists.names_by_contact(session, [c.id for c in page])
        for contact, subject in zip(page, subjects, strict=True):
            decision = found.decide(subject, purpose=purpose, now=now)
            if eligible is not None and decision.eligible is not eligible:
                continue
            yield ContactLine(contact.id, contact.email_display, names.get(contact.id, []),
                              purpose, decision.eligible, str(decision.standing),
                              decision.reason)
            produced += 1
            if limit is not None and produced >= limit:
                return
