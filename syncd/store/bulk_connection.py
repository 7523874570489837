"""A bulk import's connection, set for the one pass and set back after: fresh plans per
execution on PostgreSQL, a larger page cache on SQLite (syncd.crm.importer's apply
pass). Durability settings stay untouched."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection


@contextmanager
def custom_plans(connection: Connection) -> Iterator[None]:
    """On PostgreSQL, this connection's statements planned afresh at each execution for
    the block (psycopg prepares a statement on the server after a few executions, and
    the server then may keep one generic plan for it); elsewhere nothing. For a bulk
    import: the tables it writes grow from empty to millions of rows within one
    connection, and with no ANALYZE in between a plan kept from the first chunks (a
    sequential scan of a table that was empty then) is run on every later chunk
    (docs/performance.md)."""
    if connection.dialect.name != "postgresql":
        yield
        return
    driver = connection.connection.driver_connection
    kept = driver.prepare_threshold  # type: ignore[union-attr]
    driver.prepare_threshold = None  # type: ignore[union-attr]
    try:
        yield
    finally:
        driver.prepare_threshold = kept  # type: ignore[union-attr]


@contextmanager
def sqlite_page_cache(connection: Connection, kib: int) -> Iterator[None]:
    """On SQLite, this connection's page cache raised to `kib` for the block and restored
    after (a bulk import's unique indexes outgrow the 2 MB default); elsewhere nothing."""
    if connection.dialect.name != "sqlite":
        yield
        return
    default = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size=-{int(kib)}")
    connection.commit()
    try:
        yield
    finally:
        connection.rollback()
        connection.exec_driver_sql(f"PRAGMA cache_size={int(default or -2000)}")
        connection.commit()
