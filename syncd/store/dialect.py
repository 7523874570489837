"""What the store does differently per database: the INSERT .. ON CONFLICT DO NOTHING,
built once per table (the one insert-ignore of the store: PostgreSQL and SQLite spell it
alike but need their own dialect's construct), the plain INSERT of rows known to be new,
PostgreSQL's COPY for bulk appends, its multi-row INSERT and look-ups over arrays, and
SQLite's IN over many values (a bulk import's connection settings: bulk_connection.py)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Dialect,
    Integer,
    String,
    Table,
    Text,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import QueryableAttribute, Session

# PostgreSQL: a bulk write of at least this many rows goes as COPY (one executemany of a
# small INSERT below it: a COPY's setup costs more than a few rows' statements).
BULK_MIN_ROWS = 16
_V = TypeVar("_V")


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
    result = connection.execute(_statement(connection.dialect.name, table, columns), rows)
    if len(columns) == 1:
        return list(result.scalars())
    return [tuple(row) for row in result]


def insert_rows(session: Session, table: Table, columns: tuple[str, ...],
                rows: Iterable[Sequence[Any]]) -> None:
    """INSERT the rows (values in `columns` order; None is NULL) as one executemany of a
    statement compiled once per database (on PostgreSQL, from BULK_MIN_ROWS rows, one
    COPY), each value through its column type's own bind processing (as SQLAlchemy would
    apply it). For rows known to be new: a duplicate fails the statement (IntegrityError).
    SQLAlchemy's per-row parameter handling cost more than the database's work."""
    conn = session.connection()
    rows = list(rows)
    copy = conn.dialect.name == "postgresql" and len(rows) >= BULK_MIN_ROWS
    sql, positions, processors = _plain_insert(conn.dialect, table, columns, copy)
    processed: list[list[Any]] = []
    # A bulk write repeats its timestamps (the chunk's `now`, the same event times): each
    # distinct one is converted once per call. Its rows may share one details object (the
    # audit entries of one event content): serialised once, held so its id stays its own.
    seen: list[dict[datetime, Any]] = [{} for _ in processors]
    held: list[dict[int, tuple[Any, Any]]] = [{} for _ in processors]
    for row in rows:
        values = list(row)
        for (index, process), done, kept in zip(processors, seen, held, strict=True):
            value = values[index]
            if value is None:
                continue
            if type(value) is datetime:
                found = done.get(value)
                if found is None:
                    found = done[value] = process(value)
                values[index] = found
            elif type(value) is dict:
                pair = kept.get(id(value))
                if pair is None:
                    pair = kept[id(value)] = (value, process(value))
                values[index] = pair[1]
            else:
                values[index] = process(value)
        processed.append(values)
    if copy:
        copy_rows(session, table, columns, processed)
    elif processed:
        in_order = positions == tuple(range(len(columns)))  # each row as it is
        conn.exec_driver_sql(sql, [tuple(values) if in_order else dict(zip(
            columns, values, strict=True)) if positions is None else tuple(
            values[i] for i in positions) for values in processed])


def insert_arrays(session: Session, table: Table, rows: Sequence[Mapping[str, Any]],
                  returning: tuple[str, ...], *, skip_duplicates: bool = False
                  ) -> list[tuple[Any, ...]]:
    """PostgreSQL only: INSERT the rows (all with the same keys) as ONE statement over one
    array per column (`INSERT .. SELECT FROM unnest(...)`), optionally skipping rows whose
    unique key exists (ON CONFLICT DO NOTHING). Returns the `returning` columns of each
    row inserted. SQLAlchemy's multi-row VALUES of a bulk import's chunk put thousands of
    placeholders into the SQL, which psycopg split and parsed anew at every execution
    (the driver's largest cost in the import's profile); the arrays are bound
    parameters, and the SQL stays the same for any number of rows."""
    if not rows:
        return []
    columns = tuple(rows[0])
    conn = session.connection()
    sql, processors = _array_insert(conn.dialect, table, columns, returning, skip_duplicates)
    arrays: list[list[Any]] = [[row[name] for row in rows] for name in columns]
    for index, process in processors:
        arrays[index] = [None if value is None else process(value) for value in arrays[index]]
    return [tuple(found) for found in conn.exec_driver_sql(sql, tuple(arrays))]


@functools.lru_cache(maxsize=16)
def _array_insert(dialect: Dialect, table: Table, columns: tuple[str, ...],
                  returning: tuple[str, ...], skip_duplicates: bool
                  ) -> tuple[str, tuple[tuple[int, Callable[[Any], Any]], ...]]:
    from psycopg import sql

    casts = []
    for name in columns:
        column_type = table.c[name].type
        # Strings as unbounded text: a cast to varchar(n) would cut a longer value
        # instead of failing on it as the column does.
        spelled = ("TEXT" if isinstance(column_type, String)
                   else column_type.compile(dialect=dialect))
        # %b: psycopg's binary format (its text format escapes each element in Python).
        casts.append(sql.SQL("CAST(%b AS {}[])").format(sql.SQL(spelled)))
    statement = sql.SQL("INSERT INTO {} ({}) SELECT * FROM unnest({}){}{}").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(casts),
        sql.SQL(" ON CONFLICT DO NOTHING" if skip_duplicates else ""),
        sql.SQL(" RETURNING {}").format(sql.SQL(", ").join(map(sql.Identifier, returning)))
        if returning else sql.SQL(""))
    found = ((index, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
             for index, name in enumerate(columns))
    return statement.as_string(), tuple((i, p) for i, p in found if p is not None)


def any_of(session: Session, column: ColumnElement[Any] | QueryableAttribute[Any],
           values: Sequence[Any], element: Any) -> ColumnElement[bool]:
    """`among` for a session's database."""
    return among(session.get_bind().dialect.name, column, values, element)


def pieces(session: Session, values: Sequence[_V], size: int) -> Iterator[Sequence[_V]]:
    """The values in slices of `size` for `any_of` (SQLite's bound on parameters per
    statement); on PostgreSQL all at once (one array)."""
    step = max(1, len(values)) if session.get_bind().dialect.name == "postgresql" else size
    for start in range(0, len(values), step):
        yield values[start:start + step]


@functools.lru_cache(maxsize=16)
def _plain_insert(dialect: Dialect, table: Table, columns: tuple[str, ...], copy: bool = False
                  ) -> tuple[str, tuple[int, ...] | None,
                             tuple[tuple[int, Callable[[Any], Any]], ...]]:
    """The INSERT's SQL, where each of its positional parameters is in `columns` (None:
    the parameters are named) and the bind processor of each column that has one. For
    COPY a JSON value goes as its JSON text, serialised as psycopg's Json would (the same
    stored text): each Json object cost a Python dumper call inside the COPY, 1.5x the
    row's time for an audit entry."""
    compiled = table.insert().compile(dialect=dialect, column_keys=list(columns),
                                      for_executemany=True)  # no RETURNING
    positions = (tuple(columns.index(name) for name in compiled.positiontup or ())
                 if compiled.positional else None)
    as_text = getattr(dialect, "_json_serializer", None) or json.dumps
    found = ((index, as_text if copy and isinstance(table.c[name].type, JSON)
              else table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
             for index, name in enumerate(columns))
    return compiled.string, positions, tuple((i, p) for i, p in found if p is not None)


def among(dialect: str, column: ColumnElement[Any] | QueryableAttribute[Any],
          values: Sequence[Any], element: Any = String) -> ColumnElement[bool]:
    """`column IN values` as ONE bound parameter, whatever the count: an expanded IN list
    (a sync chunk's 2000 addresses, the import's hashes) had SQLAlchemy render, and the
    driver parse, a placeholder per value at every execution. PostgreSQL: `= ANY(array)`
    of `element` type (as it plans an IN list anyway); text of letters and digits only
    (keyed hashes, dedupe keys) as ONE text the server splits and unnests into an IN
    subquery, since psycopg escapes a text array's every element in Python (the import's
    largest driver cost). SQLite: text
    or ids as one JSON array read by json_each (the column's index still searched value
    by value)."""
    if dialect == "postgresql":
        if element is String and _plain(values):
            # IN over the unnested text, not `= ANY` of it: `= ANY` of 2000 values was
            # planned as a scan of the whole table at 100k-200k rows (the re-import's
            # hash look-up 17 ms a chunk, the dedupe look-up 57 ms); for a subquery the
            # planner assumes 200 values and probes the index per value (6 ms).
            return column.in_(select(func.unnest(func.string_to_array(
                bindparam(None, ",".join(values), type_=Text), ","))))
        return column == any_(bindparam(None, list(values), type_=ARRAY(element)))
    if all(type(value) is str for value in values):
        return _in_json(column, _json_array(values))
    if all(type(value) is int for value in values):
        return _in_json(column, "[" + ",".join(map(str, values)) + "]")
    return column.in_(values)


def ids_among(dialect: str, column: ColumnElement[Any] | QueryableAttribute[Any],
              ids: Sequence[int]) -> ColumnElement[bool]:
    """`among` for integer ids."""
    return among(dialect, column, ids, Integer)


def _in_json(column: ColumnElement[Any] | QueryableAttribute[Any],
             array: str) -> ColumnElement[bool]:
    each = func.json_each(bindparam(None, array, type_=Text))
    return column.in_(select(each.table_valued("value").c.value))


_PLAIN = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _json_array(values: Sequence[str]) -> str:
    # Keyed hashes are hex: letters and digits need no escaping in JSON, so they are
    # joined as they are (json.dumps looks at every character of every value, which cost
    # as much as the placeholders it saves; str.isalnum as much again: it looks up every
    # character's Unicode class). Anything else goes through json.dumps.
    if _plain(values):
        return '["' + '","'.join(values) + '"]'
    return json.dumps(list(values))


def _plain(values: Sequence[Any]) -> bool:
    """Some values, every one text of ASCII letters and digits only, none empty (an empty
    text alone would split into no element)."""
    if not values or not all(type(value) is str and value for value in values):
        return False
    joined = "".join(values)
    return joined.isascii() and not joined.encode().translate(None, _PLAIN)


def copy_rows(session: Session, table: Table, columns: Sequence[str],
              rows: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL only: write the rows (values in `columns` order) into `table` with one
    COPY in the session's transaction (psycopg's cursor.copy: the values travel as COPY
    data, never in the SQL text). A row that breaks a constraint fails the statement
    and with it the transaction (IntegrityError)."""
    import psycopg
    from psycopg import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns)))
    driver: Any = session.connection().connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.IntegrityError as exc:
        raise IntegrityError(f"COPY {table.name}", None, exc) from None


def refresh_statistics(connection: Connection, tables: Sequence[Table]) -> None:
    """PostgreSQL only: ANALYZE these tables now (PostgreSQL's advice after a bulk load).
    Until autovacuum gets to it, and never where it is off, the planner sizes a table
    that grew by a million rows from pages alone and takes a sequential scan for the next
    import's look-up of 2,000 hashes (150 ms each at 1M rows, against 25-60 ms by the
    index once analysed). ANALYZE reads a sample, not the table."""
    if connection.dialect.name != "postgresql":
        return
    quote = connection.dialect.identifier_preparer.quote
    for table in tables:  # an identifier, not a value: quoted by the dialect, not bound
        connection.exec_driver_sql(f"ANALYZE {quote(table.name)}")
