"""Builders for test data: contacts with consent histories, written through the real store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from syncd.addresses import parse_address
from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.schema import Contact, InternalList

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def at(days: float) -> datetime:
    """A moment `days` after T0 (2026-03-01 09:00 UTC)."""
    return T0 + timedelta(days=days)


def add_contact(
    ctx: AppContext,
    email: str,
    *,
    events: Sequence[tuple[str, Action, datetime]] = (),
    lists: Sequence[str] = (),
    first_name: str | None = None,
    last_name: str | None = None,
    customer: bool = False,
    ip: str | None = "192.0.2.10",
) -> int:
    """Create a contact with (purpose, action, when) consent events; returns its id."""
    with transaction(ctx.sessions) as session:
        contact, _ = store.upsert_contact(session, store.ContactData(
            address=parse_address(email), first_name=first_name, last_name=last_name,
            is_customer=customer), actor="test")
        for purpose, action, when in events:
            ledger.append(session, contact, ConsentRecord(
                purpose=purpose, action=action, occurred_at=when, source="web_form",
                form_url="https://example.org/signup", text_version="v3",
                privacy_notice_version="2026-01", ip=ip), actor="test")
        for name in lists:
            internal = session.scalars(select(InternalList).where(InternalList.name == name)).one()
            store.add_to_list(session, contact, internal, actor="test", source="test")
        return contact.id


def confirmed(purpose: str = "newsletter", days: float = 0) -> list[tuple[str, Action, datetime]]:
    """Given at `days`, confirmed an hour later: a double opt-in."""
    return [(purpose, Action.GIVEN, at(days)),
            (purpose, Action.CONFIRMED, at(days) + timedelta(hours=1))]


def contact_by_email(ctx: AppContext, email: str) -> Contact | None:
    with transaction(ctx.sessions) as session:
        return store.find_contact(session, email.strip().lower())
