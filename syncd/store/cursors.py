"""Named positions of the runs (table cursors): the reconciliation's newest `last_changed`
seen, the moment an audience was last read whole, and the fingerprint of the target
configuration an audience was last synced with."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from syncd.clock import parse_timestamp, utcnow
from syncd.schema import Cursor

_TABLE = cast(Table, Cursor.__table__)


def read(session: Session, name: str) -> datetime | None:
    value = session.connection().execute(
        select(_TABLE.c.value).where(_TABLE.c.name == name)).scalar()
    return None if value is None else parse_timestamp(value)


def write(session: Session, name: str, value: datetime, *, forward_only: bool) -> None:
    """Set the cursor to `value`; with `forward_only`, never to an earlier moment."""
    current = read(session, name)
    conn = session.connection()
    if current is None:
        conn.execute(_TABLE.insert(), {"name": name, "value": value.isoformat(),
                                       "updated_at": utcnow()})
    elif not forward_only or current < value:
        conn.execute(_TABLE.update().where(_TABLE.c.name == name).values(
            value=value.isoformat(), updated_at=utcnow()))


def read_text(session: Session, name: str) -> str | None:
    """A cursor that holds a token, not a moment (a configuration fingerprint)."""
    value = session.connection().execute(
        select(_TABLE.c.value).where(_TABLE.c.name == name)).scalar()
    return None if value is None else str(value)


def write_text(session: Session, name: str, value: str) -> None:
    conn = session.connection()
    updated = conn.execute(_TABLE.update().where(_TABLE.c.name == name).values(
        value=value, updated_at=utcnow())).rowcount
    if not updated:
        conn.execute(_TABLE.insert(), {"name": name, "value": value, "updated_at": utcnow()})
