"""The database-specific INSERT .. ON CONFLICT DO NOTHING, built once per table: the one
insert-ignore of the store (PostgreSQL and SQLite spell it alike but need their own
dialect's construct)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session


@functools.lru_cache(maxsize=64)
def _statement(dialect: str, table: Table, returning: tuple[Any, ...]) -> Any:
    """Built once per table: the values travel as parameters, so the compiled statement
    is reused (building it with inline values cost more than running it)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(table).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table).on_conflict_do_nothing()
    # An explicit RETURNING: with SQLAlchemy's implicit one (2.1, PostgreSQL) rowcount is
    # -1 and every duplicate looked inserted. A returned row is what says "inserted".
    return stmt.returning(*returning)


def insert_ignoring_duplicates(session: Session, table: Table,
                               rows: Sequence[dict[str, Any]], *returning: Any) -> list[Any]:
    """INSERT the rows, skipping each whose unique key exists already (safe under
    concurrent duplicates on both databases: PostgreSQL makes the second writer wait for
    the first and then skip; SQLite serialises writers). Returns what `returning` names
    (default: the primary key) of every row inserted: the value for one column, a tuple
    for several. Many rows go as one executemany, which SQLAlchemy sends as a few
    multi-row INSERTs; on the session's connection (a Core statement needs none of the
    ORM's execution machinery, and flushes nothing)."""
    if not rows:
        return []
    columns = returning or tuple(table.primary_key.columns)
    connection = session.connection()
    result = connection.execute(_statement(connection.dialect.name, table, columns),
                                list(rows))
    if len(columns) == 1:
        return list(result.scalars())
    return [tuple(row) for row in result]
