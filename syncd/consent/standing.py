"""Gathers a contact's ledger, suppressions and bounce state from the store and asks the
pure policy. The only place where policy meets the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from syncd.consent import ledger
from syncd.consent.policy import Decision, decide
from syncd.crm import suppression
from syncd.keys import Keyring
from syncd.schema import Contact


def decide_for(session: Session, contact: Contact, *, purpose: str, keyring: Keyring,
               now: datetime) -> Decision:
    events = ledger.facts_by_contact(session, [contact.id]).get(contact.id, [])
    address_hmac = keyring.address_hmac(contact.email_key)
    blocks = suppression.facts_by_hmac(session, [address_hmac]).get(address_hmac, [])
    return decide(purpose=purpose, events=events, suppressions=blocks,
                  is_customer=contact.is_customer, undeliverable_since=contact.undeliverable_at,
                  now=now)
