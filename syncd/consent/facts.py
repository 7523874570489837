"""A contact's facts in the policy's terms, and the policy's answer: what
syncd.store.facts reads (for many contacts at once), as ConsentFact, SuppressionFact and
PurchaseFact.
The one place that gathers them for the policy (the sync, `contacts show` and `list`,
webhook apply and the tests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from syncd.consent.policy import (
    Action,
    ConsentFact,
    Decision,
    PurchaseFact,
    SuppressionFact,
    decide,
    decide_soft_opt_in,
)
from syncd.keys import Keyring
from syncd.store import facts as stored
from syncd.store.facts import Scope, StoredFacts, Subject

_ACTIONS = {action.value: action for action in Action}
_NO_EVENTS: tuple[ConsentFact, ...] = ()
_NO_BLOCKS: tuple[SuppressionFact, ...] = ()
_NO_PURCHASES: tuple[PurchaseFact, ...] = ()


class HasContact(Protocol):
    """A contact as a caller holds it (ORM row or syncd.store.contacts.ContactRow)."""

    @property
    def id(self) -> int: ...

    @property
    def email_key(self) -> str: ...

    @property
    def is_customer(self) -> bool: ...

    @property
    def undeliverable_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class FactSet:
    """The policy's facts of a set of contacts, by contact id (absent: none)."""

    events: Mapping[int, tuple[ConsentFact, ...]]
    suppressions: Mapping[int, tuple[SuppressionFact, ...]]
    inbox_blocked: frozenset[int]
    purchases: Mapping[int, tuple[PurchaseFact, ...]] = field(default_factory=dict)

    def decide(self, subject: Subject, *, purpose: str, now: datetime) -> Decision:
        """The policy's answer for one of the contacts."""
        cid = subject.contact_id
        return decide(purpose=purpose, events=self.events.get(cid, _NO_EVENTS),
                      suppressions=self.suppressions.get(cid, _NO_BLOCKS),
                      is_customer=subject.is_customer,
                      undeliverable_since=subject.undeliverable_since, now=now)

    def decide_soft_opt_in(self, subject: Subject, *, purpose: str, now: datetime,
                           months: int) -> Decision:
        """The soft opt-in basis (rule 11) for one of the contacts."""
        cid = subject.contact_id
        return decide_soft_opt_in(
            purpose=purpose, purchases=self.purchases.get(cid, _NO_PURCHASES),
            events=self.events.get(cid, _NO_EVENTS),
            suppressions=self.suppressions.get(cid, _NO_BLOCKS),
            undeliverable_since=subject.undeliverable_since, now=now, months=months)


def subject(contact: HasContact) -> Subject:
    return Subject(contact.id, contact.email_key, bool(contact.is_customer),
                   contact.undeliverable_at)


def in_policy_terms(found: StoredFacts) -> FactSet:
    # List comprehensions, not generators: this runs for every event the sync reads.
    actions = _ACTIONS
    return FactSet(
        events={cid: tuple([ConsentFact(e.purpose, actions[e.action], e.occurred_at, e.source,
                                        e.ip, e.text_version) for e in events])
                for cid, events in found.events.items()},
        suppressions={cid: tuple([SuppressionFact(b.purpose, b.reason, b.created_at)
                                  for b in blocks])
                      for cid, blocks in found.suppressions.items()},
        inbox_blocked=found.inbox_blocked,
        purchases={cid: tuple([PurchaseFact(p.on, p.category, p.paid) for p in bought])
                   for cid, bought in found.purchases.items()})


def gather(db: Session | Connection, subjects: Sequence[Subject], keyring: Keyring, *,
           hmacs: Sequence[str] | None = None, scope: Scope | None = None) -> FactSet:
    """The policy's facts of these contacts (syncd.store.facts.read: a few set-based
    queries for any number). `hmacs`: their keyed address hashes if the caller has them."""
    return in_policy_terms(stored.read(db, subjects, keyring, hmacs=hmacs, scope=scope))


def decide_for(db: Session | Connection, contact: HasContact, *, purpose: str,
               keyring: Keyring, now: datetime) -> Decision:
    """The policy's answer for one contact: `gather` with a list of one."""
    one = subject(contact)
    return gather(db, [one], keyring).decide(one, purpose=purpose, now=now)
