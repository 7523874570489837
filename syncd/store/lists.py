"""Internal lists and list memberships (tables internal_lists, list_memberships): the
lists follow the configuration; memberships are added and removed for many contacts at
once, each change with its audit entry. Revision bumps are the caller's (crm.store)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, delete, select, tuple_
from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.config import ListSettings
from syncd.schema import InternalList, ListMembership
from syncd.store import audit
from syncd.store.contacts import ContactRef
from syncd.store.dialect import insert_arrays, insert_ignoring_duplicates

# Bound parameters per IN list (SQLite's historic limit is 999).
IN_CHUNK = 900
# Built once: the webhook's purge is the hot path.
_LISTS_OF = (select(InternalList.id, InternalList.name, InternalList.purpose,
                    InternalList.marketing)
             .join(ListMembership, ListMembership.list_id == InternalList.id)
             .where(ListMembership.contact_id == bindparam("contact_id")))
_UNLIST = delete(ListMembership).where(
    ListMembership.contact_id == bindparam("contact_id"),
    ListMembership.list_id.in_(bindparam("list_ids", expanding=True)))


@dataclass(frozen=True)
class ListRow:
    id: int
    name: str
    purpose: str
    marketing: bool


@dataclass(frozen=True)
class Membership:
    """A membership to add: `contact` on list `list_id` (named `list_name`)."""

    contact: ContactRef
    list_id: int
    list_name: str


def ensure_lists(session: Session, configured: Mapping[str, ListSettings]) -> dict[str, ListRow]:
    """Make the internal_lists table match the configuration (by name); returns every list."""
    existing = all_lists(session)
    conn = session.connection()
    table = cast(Table, InternalList.__table__)
    new = [{"name": name, "purpose": cfg.purpose, "marketing": cfg.marketing}
           for name, cfg in configured.items() if name not in existing]
    if new:
        conn.execute(table.insert(), new)
    changed = [(existing[name].id, cfg) for name, cfg in configured.items()
               if name in existing and (existing[name].purpose, existing[name].marketing)
               != (cfg.purpose, cfg.marketing)]
    for list_id, cfg in changed:
        conn.execute(table.update().where(table.c.id == list_id)
                     .values(purpose=cfg.purpose, marketing=cfg.marketing))
    return all_lists(session) if new or changed else existing


def all_lists(session: Session) -> dict[str, ListRow]:
    table = cast(Table, InternalList.__table__)
    rows = session.connection().execute(
        select(table.c.id, table.c.name, table.c.purpose, table.c.marketing))
    return {name: ListRow(lid, name, purpose, bool(marketing))
            for lid, name, purpose, marketing in rows}


def add_memberships(session: Session, memberships: Sequence[Membership], *, actor: str,
                    source: str) -> list[Membership]:
    """One multi-row INSERT that skips memberships already there (primary key), an audit
    entry and a pending revision bump (`ContactRef.bumps`) per membership added. Returns
    the memberships added, in order."""
    now = utcnow()
    wanted = {(m.contact.id, m.list_id): m for m in memberships}
    table = cast(Table, ListMembership.__table__)
    rows = [{"contact_id": contact_id, "list_id": list_id, "added_at": now, "source": source}
            for contact_id, list_id in wanted]
    if len(rows) > 1 and session.get_bind().dialect.name == "postgresql":
        inserted = set(insert_arrays(session, table, rows, ("contact_id", "list_id"),
                                     skip_duplicates=True))
    else:
        inserted = set(insert_ignoring_duplicates(session, table, rows, table.c.contact_id,
                                                  table.c.list_id))
    added = [m for pair, m in wanted.items() if pair in inserted]
    for m in added:
        m.contact.bumps += 1
    details = {name: {"list": name} for name in {m.list_name for m in added}}  # shared
    audit.append(session, [audit.AuditRow(actor, "list_added", m.contact.id,
                                          details[m.list_name], now) for m in added])
    return added


def remove_memberships(session: Session, contact_ids: Iterable[int], *, actor: str,
                       reason: str, purpose: str | None = None,
                       marketing_only: bool = False,
                       names: Sequence[str] | None = None) -> dict[int, list[str]]:
    """Remove these contacts from every list of `purpose` (or every marketing list, or
    the lists called `names`, or every list): one read, one DELETE, an audit entry per
    contact that left a list.
    Returns the names of the lists each contact left (contacts that left none absent)."""
    ids = sorted(set(contact_ids))
    found: dict[int, list[tuple[int, str]]] = {}
    for start in range(0, len(ids), IN_CHUNK):
        query = (select(ListMembership.contact_id, InternalList.id, InternalList.name)
                 .join(InternalList, InternalList.id == ListMembership.list_id)
                 .where(ListMembership.contact_id.in_(ids[start : start + IN_CHUNK])))
        if purpose is not None:
            query = query.where(InternalList.purpose == purpose)
        if marketing_only:
            query = query.where(InternalList.marketing.is_(True))
        if names is not None:
            query = query.where(InternalList.name.in_(list(names)))
        for cid, lid, name in session.connection().execute(query):
            found.setdefault(cid, []).append((lid, name))
    if not found:
        return {}
    pairs = [(cid, lid) for cid, lists in found.items() for lid, _ in lists]
    for start in range(0, len(pairs), IN_CHUNK):
        session.connection().execute(delete(ListMembership).where(
            tuple_(ListMembership.contact_id, ListMembership.list_id).in_(
                pairs[start : start + IN_CHUNK])))
    left = {cid: sorted(name for _, name in lists) for cid, lists in found.items()}
    now = utcnow()
    audit.append(session, [audit.AuditRow(actor, "lists_removed", cid,
                                          {"lists": lists, "reason": reason}, now)
                           for cid, lists in left.items()])
    return left


def lists_of(session: Session, contact_id: int) -> list[ListRow]:
    """The lists a contact is on (the purge's read)."""
    return [ListRow(lid, name, purpose, bool(marketing))
            for lid, name, purpose, marketing in session.connection().execute(
                _LISTS_OF, {"contact_id": contact_id})]


def unlist(session: Session, contact_id: int, list_ids: Iterable[int]) -> None:
    """Take a contact off these lists; the audit entries and the revision bump are the
    caller's (the purge writes them with the rest of the withdrawal)."""
    session.connection().execute(_UNLIST, {"contact_id": contact_id,
                                           "list_ids": sorted(set(list_ids))})


def names_by_contact(session: Session, contact_ids: Sequence[int], *,
                     only: Sequence[str] | None = None) -> dict[int, list[str]]:
    """The names of each contact's lists, sorted (contacts on no list absent); `only`
    keeps just those names."""
    found: dict[int, list[str]] = {}
    ids = list(contact_ids)
    for start in range(0, len(ids), IN_CHUNK):
        query = (select(ListMembership.contact_id, InternalList.name)
                 .join(InternalList, InternalList.id == ListMembership.list_id)
                 .where(ListMembership.contact_id.in_(ids[start : start + IN_CHUNK]))
                 .order_by(InternalList.name))
        if only is not None:
            query = query.where(InternalList.name.in_(list(only)))
        for cid, name in session.connection().execute(query):
            found.setdefault(cid, []).append(name)
    return found


def names_of(session: Session, contact_id: int) -> list[str]:
    """`names_by_contact` for one contact."""
    return names_by_contact(session, [contact_id]).get(contact_id, [])
