"""Purchases (table purchases): added for many contacts at once (import), read for many
(the policy's facts), deleted with their contacts (erasure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import cast

from sqlalchemy import ColumnElement, Connection, Table, delete, select
from sqlalchemy.orm import Session

from syncd.schema import Contact, Purchase, PushState
from syncd.store.dialect import insert_ignoring_duplicates

IN_CHUNK = 900
# The sync's chunk filter (syncd.store.facts.Scope: join, where).
Scope = tuple[ColumnElement[bool], ColumnElement[bool]]


@dataclass(frozen=True, slots=True)
class StoredPurchase:
    on: date
    category: str
    paid: bool


def add(session: Session, rows: Sequence[tuple[int, date, str, bool]]) -> list[int]:
    """Add (contact id, day, category, paid) rows in one multi-row statement; one already
    there is skipped. Returns the contact id of each row added."""
    if not rows:
        return []
    table = cast(Table, Purchase.__table__)
    return [int(cid) for cid in insert_ignoring_duplicates(session, table, [
        {"contact_id": cid, "purchased_on": on, "category": category, "paid": paid}
        for cid, on, category, paid in rows], Purchase.contact_id)]


def _day(raw: object) -> date:
    return raw if isinstance(raw, date) else date.fromisoformat(str(raw)[:10])


def of_contacts(conn: Connection, ids: Sequence[int], scope: Scope | None = None
                ) -> dict[int, tuple[StoredPurchase, ...]]:
    """The purchases of these contacts (or of those the sync's chunk filter selects)."""
    columns = (Purchase.contact_id, Purchase.purchased_on, Purchase.category, Purchase.paid)
    if scope is not None:
        join, where = scope
        queries = [select(*columns).select_from(Contact)
                   .join(Purchase, Purchase.contact_id == Contact.id)
                   .outerjoin(PushState, join).where(where)]
    else:
        queries = [select(*columns).where(Purchase.contact_id.in_(ids[i:i + IN_CHUNK]))
                   for i in range(0, len(ids), IN_CHUNK)]
    found: dict[int, list[StoredPurchase]] = defaultdict(list)
    for query in queries:
        for cid, on, category, paid in conn.execute(query).all():
            found[cid].append(StoredPurchase(_day(on), category, bool(paid)))
    return {cid: tuple(sorted(rows, key=lambda p: (p.on, p.category, p.paid)))
            for cid, rows in found.items()}


def delete_of_contacts(session: Session, contact_ids: Sequence[int]) -> None:
    """Delete every purchase of these contacts (erasure: their data goes)."""
    session.execute(delete(Purchase).where(Purchase.contact_id.in_(contact_ids)))
