"""The ledger's hash chain under the names its callers above the store use: the chain,
its hashing and its statements live in syncd.store.ledger (`syncd ledger verify` walks
it; `syncd ledger head` exports the head for a DPO to keep elsewhere, which is what
catches a rewrite of the whole chain by someone who can write the database)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from syncd.store.ledger import GENESIS, event_hash, head
from syncd.store.ledger import append as append_rows

__all__ = ["GENESIS", "append_many", "append_one", "event_hash", "head"]


def append_one(session: Session, row: dict[str, Any], *, contacts_locked: bool = False
               ) -> bool:
    """One event row (`ledger.event_row`); True when inserted (not a duplicate)."""
    return bool(append_rows(session, [row], contacts_locked=contacts_locked))


def append_many(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Many event rows; the dedupe keys inserted."""
    return append_rows(session, rows)
