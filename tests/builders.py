"""Builders for test data: contacts with consent histories, written through the real store,
and the few rows the tests read back (push state, runs)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from syncd.addresses import parse_address
from syncd.clock import utcnow
from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.schema import Contact, InternalList, PushState, SyncRun

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


def change_first_name(ctx: AppContext, email: str, first_name: str) -> None:
    """The CRM changes the contact's first name (a data change the next sync pushes)."""
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, email)
        assert contact is not None
        contact.first_name = first_name
        store.touch(contact)


def confirm_now(ctx: AppContext, email: str) -> None:
    """A new double opt-in, given and confirmed now (after anything Mailchimp did)."""
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, email)
        assert contact is not None
        moment = utcnow()
        for action, offset in ((Action.GIVEN, 0), (Action.CONFIRMED, 1)):
            ledger.append(session, contact, ConsentRecord(
                purpose="newsletter", action=action,
                occurred_at=moment + timedelta(microseconds=offset), source="web_form",
                ip="198.51.100.4"), actor="test")


def withdraw_now(ctx: AppContext, email: str) -> None:
    """The newsletter consent withdrawn now, in the CRM."""
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, email)
        assert contact is not None
        ledger.append(session, contact, ConsentRecord(
            purpose="newsletter", action=Action.WITHDRAWN, occurred_at=utcnow(),
            source="crm"), actor="test")


def push_state(ctx: AppContext) -> PushState:
    """The one push state row, detached (its columns stay readable)."""
    with transaction(ctx.sessions) as session:
        row = session.scalars(select(PushState)).one()
        session.expunge(row)
        return row


def runs(ctx: AppContext) -> list[tuple[str, str]]:
    """(kind, outcome) of every recorded run, oldest first."""
    with transaction(ctx.sessions) as session:
        return [(r.kind, r.outcome) for r in session.scalars(select(SyncRun).order_by(SyncRun.id))]
