"""The suppressions table: keyed hashes that keep a person out after an unsubscribe, an
abuse complaint or an erasure (rule 8, I10): the one add-or-renew write and the reads."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from syncd.schema import Suppression
from syncd.store.dialect import among, insert_ignoring_duplicates

ALL_PURPOSES = "*"  # every marketing purpose (abuse complaint, erasure)
CHUNK = 900  # bound parameters per statement
_TABLE = cast(Table, Suppression.__table__)
_RENEW = (update(Suppression)
          .where(Suppression.address_hmac == bindparam("hmac"),
                 Suppression.purpose == bindparam("scope"),
                 Suppression.created_at < bindparam("moment"))
          .values(created_at=bindparam("moment"), reason=bindparam("why")))


@dataclass(frozen=True)
class Entry:
    """One suppression: an address (keyed hash) blocked for a purpose (or "*") since."""

    address_hmac: str
    purpose: str
    reason: str
    created_at: datetime


def add_or_renew(session: Session, entries: Sequence[Entry], *, renew: bool
                 ) -> tuple[list[Entry], list[Entry]]:
    """Add each entry, or move an existing one for its address and purpose forward to its
    `created_at` when that is newer (`renew`). Returns (added, renewed). The entry holds
    the NEWEST blocking moment: a person who unsubscribes a second time stays blocked
    against consent dated between the two (rule 6)."""
    if not entries:
        return [], []
    inserted = set(insert_ignoring_duplicates(
        session, _TABLE, [{"address_hmac": e.address_hmac, "purpose": e.purpose,
                           "reason": e.reason, "created_at": e.created_at} for e in entries],
        _TABLE.c.address_hmac, _TABLE.c.purpose))
    added = [e for e in entries if (e.address_hmac, e.purpose) in inserted]
    renewed: list[Entry] = []
    if renew:
        conn = session.connection()
        for entry in entries:
            if (entry.address_hmac, entry.purpose) in inserted:
                continue
            moved = conn.execute(_RENEW, {"hmac": entry.address_hmac, "scope": entry.purpose,
                                          "moment": entry.created_at, "why": entry.reason})
            if getattr(moved, "rowcount", 0):
                renewed.append(entry)
    return added, renewed


def by_hmac(session: Session, hmacs: Iterable[str]) -> dict[str, list[Entry]]:
    """The suppressions of these addresses (keyed hashes)."""
    keys = sorted(set(hmacs))
    found: dict[str, list[Entry]] = defaultdict(list)
    conn = session.connection()
    for start in range(0, len(keys), CHUNK):
        query = (select(Suppression.address_hmac, Suppression.purpose, Suppression.reason,
                        Suppression.created_at)
                 .where(among(conn.dialect.name, Suppression.address_hmac,
                              keys[start:start + CHUNK])))
        for row in conn.execute(query):
            found[row[0]].append(Entry(*row))
    return found
