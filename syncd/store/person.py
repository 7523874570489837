"""Everything stored about one person, read for the access and portability answer (Art. 15
and 20) and `contacts proof`: the contact, its memberships, push states and audit entries,
and the suppressions and stored webhooks of a set of keyed address hashes. The rows come
back as the session's ORM objects, read only: the export writes every stored column."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from syncd import schema
from syncd.schema import AuditEntry, Contact, PushState, Suppression, WebhookEvent


@dataclass(frozen=True)
class ContactRecord:
    """What is stored under one contact id, each list in the export's order."""

    lists: list[tuple[schema.ListMembership, schema.InternalList]]
    push_states: list[PushState]
    audit: list[AuditEntry]


def contact(session: Session, email_key: str) -> Contact | None:
    return session.scalar(select(Contact).where(Contact.email_key == email_key))


def contact_record(session: Session, contact_id: int) -> ContactRecord:
    return ContactRecord(
        lists=[(m, lst) for m, lst in session.execute(
            select(schema.ListMembership, schema.InternalList)
            .join(schema.InternalList,
                  schema.InternalList.id == schema.ListMembership.list_id)
            .where(schema.ListMembership.contact_id == contact_id)
            .order_by(schema.InternalList.name))],
        push_states=list(session.scalars(
            select(PushState).where(PushState.contact_id == contact_id)
            .order_by(PushState.audience_id))),
        audit=list(session.scalars(
            select(AuditEntry).where(AuditEntry.contact_id == contact_id)
            .order_by(AuditEntry.at, AuditEntry.id))))


def suppressions(session: Session, hmacs: Sequence[str]) -> list[Suppression]:
    return list(session.scalars(
        select(Suppression).where(Suppression.address_hmac.in_(list(hmacs)))
        .order_by(Suppression.created_at, Suppression.id)))


def webhooks(session: Session, hmacs: Sequence[str]) -> list[WebhookEvent]:
    return list(session.scalars(
        select(WebhookEvent).where(WebhookEvent.address_hmac.in_(list(hmacs)))
        .order_by(WebhookEvent.received_at, WebhookEvent.id)))
