"""The import's marks on contacts (contacts.import_hash, contacts.import_revision): the
content hash of the import line last applied to a contact and the revision that left, so
a later import skips a line that would change nothing (syncd.crm.importer)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from sqlalchemy import Integer, String, Table, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from syncd.schema import Contact
from syncd.store.dialect import among

_TABLE = cast(Table, Contact.__table__)
# The revision as it stands after the chunk's bumps (same transaction).
_MARK = (update(_TABLE).where(_TABLE.c.id == bindparam("b_id"))
         .values(import_hash=bindparam("b_hash"), import_revision=_TABLE.c.revision))
# PostgreSQL: a chunk's marks in one statement over two arrays (an executemany is one
# UPDATE per contact on the server).
_PG_MARKS = select(func.unnest(bindparam("ids", type_=ARRAY(Integer))).label("id"),
                   func.unnest(bindparam("hashes", type_=ARRAY(String))).label("hash")
                   ).subquery("m")
_PG_MARK = (update(_TABLE).where(_TABLE.c.id == _PG_MARKS.c.id)
            .values(import_hash=_PG_MARKS.c.hash, import_revision=_TABLE.c.revision))


def unchanged(session: Session, hashes: Iterable[str]) -> dict[str, str]:
    """Of these content hashes, those a contact holds from an earlier import while it has
    not changed since (revision still the one that import left): hash -> that contact's
    normalised address. By the hash alone (indexed, migration 0010): the line need not
    be decoded to be found. PostgreSQL takes the hashes as one array (`= ANY`, sent as one
    text: syncd.store.dialect.among): an IN list of 900 placeholders cost the driver and
    the server more than the look-ups (65 ms per 900 against 10 ms per 2000)."""
    wanted = sorted(set(hashes))
    found: dict[str, str] = {}
    conn = session.connection()
    # A batch (at most 2000 lines) in one statement: one bound parameter on either
    # database (syncd.store.dialect.among).
    if wanted:
        query = select(_TABLE.c.import_hash, _TABLE.c.email_key).where(
            among(conn.dialect.name, _TABLE.c.import_hash, wanted),
            _TABLE.c.revision == _TABLE.c.import_revision)
        # Both columns are text: the rows (tuples) go into the dict as fetched.
        found.update(conn.execute(query).all())
    return found


def mark(session: Session, marks: Iterable[tuple[int, str]]) -> None:
    """(contact id, content hash of the line just applied; the last per contact counts):
    one executemany UPDATE (one UPDATE over two arrays on PostgreSQL), after the chunk's
    revision bumps."""
    pairs = list(dict(marks).items())
    conn = session.connection()
    if len(pairs) > 1 and conn.dialect.name == "postgresql":
        conn.execute(_PG_MARK, {"ids": [cid for cid, _ in pairs],
                                "hashes": [digest for _, digest in pairs]})
    elif pairs:
        conn.execute(_MARK, [{"b_id": cid, "b_hash": digest} for cid, digest in pairs])
