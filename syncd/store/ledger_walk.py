"""Reads that walk the consent ledger's chain in position order (events and tombstones),
for `syncd ledger verify` (syncd.consent.chain_verify)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from syncd.schema import ConsentEvent, LedgerTombstone
from syncd.store.ledger_hash import HASHED_FIELDS

_COLUMNS = [getattr(ConsentEvent, name) for name in HASHED_FIELDS]


@dataclass(frozen=True)
class Link:
    """One place of the chain: an event (with its hashed content) or a tombstone."""

    seq: int
    prev: str
    stored: str
    event_id: int
    tombstone: bool
    content: dict[str, Any] | None


def page(session: Session, after: int, limit: int) -> tuple[list[Link], list[Link]]:
    """Up to `limit` events and up to `limit` tombstones after position `after`, each in
    position order."""
    events = session.execute(
        select(ConsentEvent.chain_seq, ConsentEvent.chain_prev, ConsentEvent.chain_hash,
               ConsentEvent.id, *_COLUMNS)
        .where(ConsentEvent.chain_seq > after).order_by(ConsentEvent.chain_seq)
        .limit(limit)).all()
    stones = session.execute(
        select(LedgerTombstone.seq, LedgerTombstone.prev_hash, LedgerTombstone.event_hash,
               LedgerTombstone.event_id)
        .where(LedgerTombstone.seq > after).order_by(LedgerTombstone.seq)
        .limit(limit)).all()
    return ([Link(int(r[0]), r[1], r[2], int(r[3]), False,
                  dict(zip(HASHED_FIELDS, r[4:], strict=True))) for r in events],
            [Link(int(r[0]), r[1], r[2], int(r[3]), True, None) for r in stones])


def holder_of(session: Session, link: str) -> tuple[int, int] | None:
    """(event id, chain position) of the event or tombstone whose link is `link`."""
    found = session.execute(select(ConsentEvent.id, ConsentEvent.chain_seq)
                            .where(ConsentEvent.chain_hash == link).limit(1)).first()
    if found is None:
        found = session.execute(select(LedgerTombstone.event_id, LedgerTombstone.seq)
                                .where(LedgerTombstone.event_hash == link).limit(1)).first()
    return None if found is None else (int(found[0]), int(found[1]))
