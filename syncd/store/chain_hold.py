"""The ledger's chain head held for a whole batch (syncd.webhooks.group_commit): many
deliveries applied in one transaction lock and read the head once, not once each.

`hold_head` makes the head, once locked (syncd.store.ledger), remembered for the rest of
that session's transaction; every move of the head updates it. `savepoint` gives the
remembered head back when a delivery's savepoint rolls back: its move, and on PostgreSQL
the row lock taken inside it, are undone with it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from syncd.store.ledger import Head

_HELD = "syncd_held_chain_head"  # session.info key, present while the head is held


def hold_head(session: Session) -> None:
    """Remember the head once locked, to the end of this session's ONE transaction (a
    later transaction would read a head another writer may have moved since)."""
    session.info[_HELD] = None


def held(session: Session) -> Head | None:
    """The head this transaction locked already (None: not held, or not yet locked)."""
    found: Head | None = session.info.get(_HELD)
    return found


def moved(session: Session, head: Head) -> None:
    """The head was locked at, or moved to, `head` in this transaction."""
    if _HELD in session.info:
        session.info[_HELD] = head


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """A SAVEPOINT; if it rolls back, the remembered head is again the one from before."""
    before = session.info.get(_HELD)
    try:
        with session.begin_nested():
            yield
    except BaseException:
        if _HELD in session.info:
            session.info[_HELD] = before
        raise
