"""What a person's state is after webhooks: read through the real store and policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from syncd.clock import utcnow
from syncd.consent import ledger
from syncd.consent.facts import decide_for
from syncd.consent.policy import Standing
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.schema import Suppression


@dataclass(frozen=True)
class PersonState:
    email_key: str | None
    first_name: str | None
    last_name: str | None
    lists: tuple[str, ...]
    undeliverable: bool
    standing: Standing | None
    eligible: bool
    withdrawals: tuple[tuple[str, datetime, str | None], ...]  # (source, occurred_at, reason)
    confirmations: int
    revision: int


def person(ctx: AppContext, email: str, purpose: str = "newsletter") -> PersonState:
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, email)
        if contact is None:
            return PersonState(None, None, None, (), False, None, False, (), 0, 0)
        decision = decide_for(session, contact, purpose=purpose, keyring=ctx.keyring,
                              now=utcnow())
        events = ledger.history(session, contact.id)
        return PersonState(
            email_key=contact.email_key, first_name=contact.first_name,
            last_name=contact.last_name, lists=tuple(store.list_names(session, contact.id)),
            undeliverable=contact.undeliverable_at is not None, standing=decision.standing,
            eligible=decision.eligible,
            withdrawals=tuple((e.source, e.occurred_at, e.reason) for e in events
                              if e.action == "withdrawn" and e.purpose == purpose),
            confirmations=sum(1 for e in events
                              if e.action == "confirmed" and e.purpose == purpose),
            revision=contact.revision)


def suppressions(ctx: AppContext, email: str) -> dict[str, tuple[str, datetime]]:
    """purpose -> (reason, created_at) for the keyed hash of this address."""
    with transaction(ctx.sessions) as session:
        rows = session.scalars(select(Suppression).where(
            Suppression.address_hmac == ctx.keyring.address_hmac(email)))
        return {row.purpose: (row.reason, row.created_at) for row in rows}
