"""The CRM's changes to contacts and list memberships for callers that hold ORM objects
(sign-up, webhook apply, tests): each is the store's set-based write with a list of one,
then the revision bump that lets the incremental sync see it (syncd.store.contacts,
syncd.store.lists)."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session, object_session

from syncd.schema import Contact
from syncd.store import contacts, lists
from syncd.store.contacts import ContactData

# ContactData is the input of upsert_contact (its home: syncd.store.contacts).
__all__ = ["ContactData", "add_to_list", "find_contact", "list_names",
           "remove_from_lists", "touch", "upsert_contact"]


class NamedList(Protocol):
    """An internal list as the callers hold it (ORM row or syncd.store.lists.ListRow)."""

    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...


def _bumped(session: Session, contact: Contact, bumps: int) -> None:
    """The stored revision moved under the ORM object: it reloads on next access."""
    contacts.apply_revision_bumps(session, [contacts.ContactRef(contact.id, "", bumps)])
    if contact in session:
        session.expire(contact, ["revision", "updated_at"])


def touch(contact: Contact) -> None:
    """Mark a contact changed: the next sync looks at it again (in its session's
    transaction)."""
    session = object_session(contact)
    assert session is not None, "touch() needs a contact loaded by a session"
    if contact.id is None:
        session.flush()  # a new contact gets its id
    _bumped(session, contact, 1)


def find_contact(session: Session, email_key: str) -> Contact | None:
    return contacts.find_entity(session, email_key)


def upsert_contact(session: Session, data: ContactData, *, actor: str) -> tuple[Contact, bool]:
    """Create or update by address. Only given fields change; returns (contact, changed)."""
    session.flush()
    ((ref, _created, changed),) = contacts.upsert(session, [data], actor=actor)
    contacts.apply_revision_bumps(session, [ref])
    return contacts.entity(session, ref.id), changed


def add_to_list(session: Session, contact: Contact, internal_list: NamedList, *,
                actor: str, source: str) -> bool:
    session.flush()
    ref = contacts.ContactRef(contact.id, contact.email_key)
    added = lists.add_memberships(session, [lists.Membership(
        ref, internal_list.id, internal_list.name)], actor=actor, source=source)
    if added:
        _bumped(session, contact, ref.bumps)
    return bool(added)


def remove_from_lists(session: Session, contact: Contact, *, actor: str, reason: str,
                      purpose: str | None = None, marketing_only: bool = False) -> list[str]:
    """Remove from every list of `purpose` (or every marketing list). Returns list names."""
    session.flush()
    names = lists.remove_memberships(session, [contact.id], actor=actor, reason=reason,
                                     purpose=purpose, marketing_only=marketing_only)
    if names:
        _bumped(session, contact, 1)
    return names.get(contact.id, [])


def list_names(session: Session, contact_id: int) -> list[str]:
    return lists.names_of(session, contact_id)
