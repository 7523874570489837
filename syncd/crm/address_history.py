"""Every address a person had: an address change keeps one person (I12).

A contact's earlier addresses are kept as keyed hashes only (least data). A suppression
of any of them blocks all of them: a stale CRM export of an OLD address of someone who
changed address and then unsubscribed is the same person, and stays out. Looked up when
the sync reads its candidates (syncd.sync.source), so it holds whatever order the
address change and the unsubscribe came in."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from syncd.db import insert_ignoring_duplicates
from syncd.schema import AddressHistory, Contact


def remember(session: Session, *, contact_id: int, old_hmac: str, at: datetime) -> None:
    """The contact no longer has the address with this keyed hash."""
    insert_ignoring_duplicates(session, AddressHistory.__table__, {
        "contact_id": contact_id, "address_hmac": old_hmac, "replaced_at": at})


def hmacs_of(session: Session, contact_id: int) -> list[str]:
    """The keyed hashes of every earlier address of this contact."""
    return list(session.scalars(select(AddressHistory.address_hmac).where(
        AddressHistory.contact_id == contact_id)))


def same_person(conn: Connection, hmacs: Iterable[str],
                address_hmac: Callable[[str], str]) -> dict[str, set[str]]:
    """For each keyed hash, the OTHER hashes of the same person: the earlier and current
    addresses of every contact that has or once had it. Two queries for any number."""
    keys = sorted(set(hmacs))
    if not keys:
        return {}
    owners: dict[str, set[int]] = defaultdict(set)
    for cid, mac in conn.execute(select(AddressHistory.contact_id, AddressHistory.address_hmac)
                                 .where(AddressHistory.address_hmac.in_(keys))):
        owners[mac].add(cid)
    current = dict(conn.execute(select(Contact.id, Contact.email_key).where(
        Contact.id.in_(sorted({c for ids in owners.values() for c in ids})))).all()
    ) if owners else {}
    people = set(current)
    history: dict[int, set[str]] = defaultdict(set)
    if people:
        for cid, mac in conn.execute(select(AddressHistory.contact_id,
                                            AddressHistory.address_hmac)
                                     .where(AddressHistory.contact_id.in_(sorted(people)))):
            history[cid].add(mac)
    found: dict[str, set[str]] = {}
    for mac, ids in owners.items():
        group: set[str] = set()
        for cid in ids:
            group |= history[cid]
            if cid in current:
                group.add(address_hmac(current[cid]))
        group.discard(mac)
        if group:
            found[mac] = group
    return found


def earlier_of_contacts(conn: Connection, contact_ids: Iterable[int]) -> dict[int, set[str]]:
    """The earlier addresses (keyed hashes) of these contacts."""
    ids = sorted(set(contact_ids))
    found: dict[int, set[str]] = defaultdict(set)
    if not ids:
        return found
    for cid, mac in conn.execute(select(AddressHistory.contact_id, AddressHistory.address_hmac)
                                 .where(AddressHistory.contact_id.in_(ids))):
        found[cid].add(mac)
    return found
