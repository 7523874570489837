"""The address_history table: every address a contact had before its current one, as
keyed hashes (I12); the one write and the reads."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.orm import Session

from syncd.schema import AddressHistory, Contact
from syncd.store.dialect import among, insert_ignoring_duplicates

_TABLE = cast(Table, AddressHistory.__table__)


def remember(session: Session, changes: Iterable[tuple[int, str, datetime]]) -> None:
    """(contact id, keyed hash, moment): the contact no longer has that address."""
    insert_ignoring_duplicates(session, _TABLE, [
        {"contact_id": contact_id, "address_hmac": old_hmac, "replaced_at": at}
        for contact_id, old_hmac, at in changes])


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


def same_person(conn: Connection, hmacs: Iterable[str],
                address_hmac: Callable[[str], str]) -> dict[str, set[str]]:
    """For each keyed hash, the OTHER hashes of the same person: the earlier and current
    addresses of every contact that has or once had it. Three queries for any number."""
    keys = sorted(set(hmacs))
    if not keys:
        return {}
    owners: dict[str, set[int]] = defaultdict(set)
    for cid, mac in conn.execute(select(AddressHistory.contact_id, AddressHistory.address_hmac)
                                 .where(among(conn.dialect.name,
                                              AddressHistory.address_hmac, keys))):
        owners[mac].add(cid)
    current = dict(conn.execute(select(Contact.id, Contact.email_key).where(
        Contact.id.in_(sorted({c for ids in owners.values() for c in ids})))).all()
    ) if owners else {}
    history = earlier_of_contacts(conn, current)
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
