"""The local CRM store: contacts, internal lists and memberships. Every change bumps the
contact's revision so the incremental sync sees it, and lands in the audit trail."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from syncd.addresses import Address
from syncd.clock import utcnow
from syncd.config import ListSettings
from syncd.db import insert_many, insert_many_ignoring_duplicates
from syncd.schema import AuditEntry, Contact, InternalList, ListMembership
from syncd.store import audit


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


@dataclass(slots=True)
class ContactRef:
    """A contact as the bulk import handles it: no ORM object (loading, tracking and
    flushing ORM objects cost more than the SQL). `bumps` counts the changes not yet
    added to the stored revision: `apply_revision_bumps` writes them in one statement."""

    id: int
    email_key: str
    bumps: int = 0


_FIELDS = ("email_display", "first_name", "last_name", "crm_id", "is_customer", "attributes")


def _changes(current: dict[str, Any], data: ContactData) -> dict[str, object]:
    """`_update_contact`'s rule on plain values: only given fields that differ."""
    changes: dict[str, object] = {
        name: value
        for name, value in (("first_name", data.first_name), ("last_name", data.last_name),
                            ("crm_id", data.crm_id), ("is_customer", data.is_customer),
                            ("email_display", data.address.display))
        if value is not None and current[name] != value
    }
    if data.attributes is not None:
        merged = {**current["attributes"], **data.attributes}
        if merged != current["attributes"]:
            changes["attributes"] = merged
    return changes


def upsert_contacts(session: Session, batch: Sequence[ContactData], *,
                    actor: str) -> list[tuple[ContactRef, bool, bool]]:
    """`upsert_contact` for a batch, in order (bulk import): one indexed query (unique
    email_key) finds the existing contacts, one multi-row INSERT returns the new ids,
    one executemany UPDATE writes the changed fields. The revision bumps of changed
    contacts are left in `ContactRef.bumps` (see `apply_revision_bumps`). Returns
    (contact, created, changed) per item; a repeated address shares one ContactRef."""
    table = cast(Table, Contact.__table__)
    keys = list({data.address.key for data in batch})
    current: dict[str, dict[str, Any]] = {}
    refs: dict[str, ContactRef] = {}
    for start in range(0, len(keys), 900):
        query = select(table.c.id, table.c.email_key, *(table.c[name] for name in _FIELDS)
                       ).where(table.c.email_key.in_(keys[start : start + 900]))
        for row in session.execute(query).mappings():
            current[row["email_key"]] = {name: row[name] for name in _FIELDS}
            current[row["email_key"]]["attributes"] = dict(row["attributes"] or {})
            refs[row["email_key"]] = ContactRef(row["id"], row["email_key"])
    now = utcnow()
    new: dict[str, dict[str, Any]] = {}
    dirty: set[str] = set()
    updated_fields: list[tuple[str, list[str]]] = []
    out: list[tuple[str, bool, bool]] = []
    for data in batch:
        key = data.address.key
        state = current.get(key)
        if state is None:
            state = current[key] = {
                "email_display": data.address.display, "first_name": data.first_name,
                "last_name": data.last_name, "crm_id": data.crm_id,
                "is_customer": bool(data.is_customer),
                "attributes": dict(data.attributes or {})}
            new[key] = state
            out.append((key, True, True))
            continue
        changes = _changes(state, data)
        state.update(changes)
        if changes:
            updated_fields.append((key, sorted(changes)))
            if key not in new:
                dirty.add(key)
        out.append((key, False, bool(changes)))
    if new:
        rows = [{"email_key": key, **state, "created_at": now, "updated_at": now,
                 "revision": 1} for key, state in new.items()]
        returned = session.execute(insert(table).returning(table.c.id, table.c.email_key),
                                   rows)
        for contact_id, key in returned:
            refs[key] = ContactRef(contact_id, key)
    if dirty:
        session.execute(
            update(table).where(table.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in _FIELDS}),
            [{"b_id": refs[key].id, **{f"b_{name}": current[key][name] for name in _FIELDS}}
             for key in dirty])
    audit_rows = [_audit_row(now, actor, "contact_created", refs[key].id) for key in new]
    for key, fields in updated_fields:
        refs[key].bumps += 1  # as touch(): one bump per changing line
        audit_rows.append(_audit_row(now, actor, "contact_updated", refs[key].id,
                                     fields=fields))
    insert_many(session, AuditEntry.__table__, audit_rows)
    return [(refs[key], created, changed) for key, created, changed in out]


def apply_revision_bumps(session: Session, contacts: Iterable[ContactRef]) -> None:
    """Add each contact's pending bumps to its revision (one executemany UPDATE), so the
    next sync looks at every contact the import changed, exactly as `touch` would."""
    table = cast(Table, Contact.__table__)
    now = utcnow()
    unique = list({id(ref): ref for ref in contacts}.values())
    rows = [{"b_id": ref.id, "b_bumps": ref.bumps, "b_now": now}
            for ref in unique if ref.bumps]
    if rows:
        session.execute(update(table).where(table.c.id == bindparam("b_id"))
                        .values(revision=table.c.revision + bindparam("b_bumps"),
                                updated_at=bindparam("b_now")), rows)
    for ref in unique:
        ref.bumps = 0


def _audit_row(at: datetime, actor: str, action: str, contact_id: int,
               **details: Any) -> dict[str, Any]:
    """One audit_log row, as `audit.record` writes it, for a multi-row INSERT."""
    return {"at": at, "actor": actor, "action": action, "contact_id": contact_id,
            "details": details}


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


def add_to_lists(session: Session, pairs: Sequence[tuple[ContactRef, InternalList]], *,
                 actor: str, source: str) -> int:
    """`add_to_list` for many (contact, list) pairs (bulk import): one multi-row INSERT
    that skips memberships already there (primary key), a bump and an audit entry per
    membership added. Returns how many were added."""
    now = utcnow()
    wanted = {(contact.id, internal_list.id): (contact, internal_list)
              for contact, internal_list in pairs}
    table = ListMembership.__table__
    inserted = insert_many_ignoring_duplicates(
        session, table, [{"contact_id": contact_id, "list_id": list_id, "added_at": now,
                          "source": source} for contact_id, list_id in wanted],
        table.c.contact_id, table.c.list_id)
    audit_rows = []
    for pair, (contact, internal_list) in wanted.items():
        if pair in inserted:
            contact.bumps += 1
            audit_rows.append(_audit_row(now, actor, "list_added", contact.id,
                                         list=internal_list.name))
    insert_many(session, AuditEntry.__table__, audit_rows)
    return len(audit_rows)


def list_names(session: Session, contact_id: int) -> list[str]:
    return sorted(session.scalars(
        select(InternalList.name).join(ListMembership, ListMembership.list_id == InternalList.id)
        .where(ListMembership.contact_id == contact_id)))
