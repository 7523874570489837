"""The local CRM store: contacts, internal lists and memberships. Every change bumps the
contact's revision so the incremental sync sees it, and lands in the audit trail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from syncd import audit
from syncd.clock import utcnow
from syncd.config import ListSettings
from syncd.crm.addresses import Address
from syncd.schema import Contact, InternalList, ListMembership


@dataclass(frozen=True)
class ContactData:
    address: Address
    first_name: str | None = None
    last_name: str | None = None
    crm_id: str | None = None
    attributes: Mapping[str, str] | None = None
    is_customer: bool | None = None


def touch(contact: Contact) -> None:
    """Mark a contact changed: the next sync looks at it again."""
    contact.revision += 1
    contact.updated_at = utcnow()


def find_contact(session: Session, email_key: str) -> Contact | None:
    return session.scalar(select(Contact).where(Contact.email_key == email_key))


def upsert_contact(session: Session, data: ContactData, *, actor: str) -> tuple[Contact, bool]:
    """Create or update by address. Only given fields change; returns (contact, changed)."""
    contact = find_contact(session, data.address.key)
    now = utcnow()
    if contact is None:
        contact = _new_contact(data, now)
        session.add(contact)
        session.flush()
        audit.record(session, actor=actor, action="contact_created", contact_id=contact.id)
        return contact, True
    return contact, _update_contact(session, contact, data, actor=actor)


def _new_contact(data: ContactData, now: datetime) -> Contact:
    return Contact(
        email_key=data.address.key, email_display=data.address.display,
        first_name=data.first_name, last_name=data.last_name, crm_id=data.crm_id,
        attributes=dict(data.attributes or {}), is_customer=bool(data.is_customer),
        created_at=now, updated_at=now, revision=1,
    )


def _update_contact(session: Session, contact: Contact, data: ContactData, *,
                    actor: str) -> bool:
    """Apply the given fields; bump the revision and audit when something changed."""
    changes: dict[str, object] = {
        name: value
        for name, value in (("first_name", data.first_name), ("last_name", data.last_name),
                            ("crm_id", data.crm_id), ("is_customer", data.is_customer),
                            ("email_display", data.address.display))
        if value is not None and getattr(contact, name) != value
    }
    if data.attributes is not None and contact.attributes != {**contact.attributes,
                                                              **data.attributes}:
        changes["attributes"] = {**contact.attributes, **data.attributes}
    for name, value in changes.items():
        setattr(contact, name, value)
    if changes:
        touch(contact)
        audit.record(session, actor=actor, action="contact_updated", contact_id=contact.id,
                     fields=sorted(changes))
    return bool(changes)


def upsert_contacts(session: Session, batch: Sequence[ContactData], *,
                    actor: str) -> list[tuple[Contact, bool, bool]]:
    """`upsert_contact` for a batch, in order (bulk import): one query finds the existing
    contacts and one flush inserts the new ones. Returns (contact, created, changed) per
    item."""
    keys = list({data.address.key for data in batch})
    known: dict[str, Contact] = {}
    for start in range(0, len(keys), 900):
        query = select(Contact).where(Contact.email_key.in_(keys[start : start + 900]))
        known.update((contact.email_key, contact) for contact in session.scalars(query))
    now = utcnow()
    created: list[Contact] = []
    out: list[tuple[Contact, bool, bool]] = []
    for data in batch:
        contact = known.get(data.address.key)
        if contact is None:
            contact = known[data.address.key] = _new_contact(data, now)
            session.add(contact)
            created.append(contact)
            out.append((contact, True, True))
            continue
        if contact.id is None:  # created earlier in this batch: give it its id first
            session.flush()
        out.append((contact, False, _update_contact(session, contact, data, actor=actor)))
    session.flush()
    for contact in created:
        audit.record(session, actor=actor, action="contact_created", contact_id=contact.id)
    return out


def ensure_lists(
    session: Session, configured: Mapping[str, ListSettings]
) -> dict[str, InternalList]:
    """Make the internal_lists table match the configuration (by name)."""
    existing = {row.name: row for row in session.scalars(select(InternalList))}
    for name, cfg in configured.items():
        row = existing.get(name)
        if row is None:
            row = InternalList(name=name, purpose=cfg.purpose, marketing=cfg.marketing)
            session.add(row)
            existing[name] = row
        elif (row.purpose, row.marketing) != (cfg.purpose, cfg.marketing):
            row.purpose, row.marketing = cfg.purpose, cfg.marketing
    session.flush()
    return existing


def add_to_list(session: Session, contact: Contact, internal_list: InternalList, *,
                actor: str, source: str) -> bool:
    present = session.get(ListMembership, (contact.id, internal_list.id))
    if present is not None:
        return False
    session.add(ListMembership(contact_id=contact.id, list_id=internal_list.id,
                               added_at=utcnow(), source=source))
    touch(contact)
    audit.record(session, actor=actor, action="list_added", contact_id=contact.id,
                 list=internal_list.name)
    return True


def remove_from_lists(session: Session, contact: Contact, *, actor: str, reason: str,
                      purpose: str | None = None, marketing_only: bool = False) -> list[str]:
    """Remove from every list of `purpose` (or every marketing list). Returns list names."""
    query = (select(InternalList).join(ListMembership, ListMembership.list_id == InternalList.id)
             .where(ListMembership.contact_id == contact.id))
    if purpose is not None:
        query = query.where(InternalList.purpose == purpose)
    if marketing_only:
        query = query.where(InternalList.marketing.is_(True))
    lists = list(session.scalars(query))
    if not lists:
        return []
    session.execute(delete(ListMembership).where(
        ListMembership.contact_id == contact.id,
        ListMembership.list_id.in_([row.id for row in lists])))
    touch(contact)
    names = sorted(row.name for row in lists)
    audit.record(session, actor=actor, action="lists_removed", contact_id=contact.id,
                 lists=names, reason=reason)
    return names


def add_to_lists(session: Session, pairs: Sequence[tuple[Contact, InternalList]], *,
                 actor: str, source: str) -> int:
    """`add_to_list` for many (contact, list) pairs (bulk import): one query finds the
    memberships already there. Returns how many were added."""
    ids = list({contact.id for contact, _ in pairs})
    present: set[tuple[int, int]] = set()
    for start in range(0, len(ids), 900):
        query = select(ListMembership.contact_id, ListMembership.list_id).where(
            ListMembership.contact_id.in_(ids[start : start + 900]))
        present.update((contact_id, list_id) for contact_id, list_id in session.execute(query))
    now = utcnow()
    added = 0
    for contact, internal_list in pairs:
        if (contact.id, internal_list.id) in present:
            continue
        present.add((contact.id, internal_list.id))
        session.add(ListMembership(contact_id=contact.id, list_id=internal_list.id,
                                   added_at=now, source=source))
        touch(contact)
        audit.record(session, actor=actor, action="list_added", contact_id=contact.id,
                     list=internal_list.name)
        added += 1
    return added


def list_names(session: Session, contact_id: int) -> list[str]:
    return sorted(session.scalars(
        select(InternalList.name).join(ListMembership, ListMembership.list_id == InternalList.id)
        .where(ListMembership.contact_id == contact_id)))
