"""Engine and sessions. SQLite (WAL, foreign keys on) is the embedded default;
PostgreSQL (psycopg 3) is the production database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from syncd.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 10_000
# What is left of a deadline_transaction's budget (ms), for the SQLite BEGIN of this thread.
_BUDGET_MS: ContextVar[int | None] = ContextVar("syncd_db_budget_ms", default=None)
# Below this, a transaction is not even started: it could not finish in time.
MIN_BUDGET_MS = 50


class DeadlineExceeded(Exception):
    """A deadline_transaction ran out of time; it was rolled back, nothing was written."""


def is_transient(exc: BaseException) -> bool:
    """A database that is busy, locked, slow or unreachable (retrying later can succeed),
    as opposed to a bug or bad data: lock and statement timeouts, SQLite's "database is
    locked", lost connections, an exhausted pool, a deadline that ran out."""
    if isinstance(exc, DeadlineExceeded | OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


URL_HELP = "use sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user@host/db"


def _url_error(problem: str) -> ConfigError:
    return ConfigError(f"setting 'database_url' (SYNCD_DATABASE_URL): {problem}; {URL_HELP}")


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _checked_url(url: str) -> URL:
    """The parsed URL, or a ConfigError that names what is wrong with it (never its
    password: the message is built from the parts, not the text)."""
    try:
        parsed = make_url(normalise_url(url))
    except Exception:
        raise _url_error("not a database URL") from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite":
        if parsed.host:
            # sqlite://relative.db reads "relative.db" as a host name: a slash is missing.
            raise _url_error(f"an SQLite URL has no host (got {parsed.host!r}: "
                             "three slashes before a relative path)")
        return parsed
    if backend == "postgresql":
        if driver != "psycopg":
            raise _url_error(f"the PostgreSQL driver {driver!r} is not supported (syncd uses "
                             "psycopg 3: write postgresql:// without a driver)")
        return parsed
    raise _url_error(f"unsupported database {backend!r}")


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for PostgreSQL, in-memory or `file:` URIs)."""
    parsed = _checked_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def make_engine(url: str, *, pool_size: int = 10, connect_timeout: int = 3) -> Engine:
    parsed = _checked_url(url)
    url = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, issue BEGIN, so that BEGIN IMMEDIATE works.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Take the write lock at the start: two writers never deadlock upgrading
            # a read lock, and a busy database waits (busy_timeout) instead of failing.
            # A deadline_transaction waits at most what is left of its budget.
            budget = _BUDGET_MS.get()
            if budget is not None:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={int(budget)}")
                conn.info["syncd_busy_bounded"] = True
            elif conn.info.pop("syncd_busy_bounded", False):
                conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=5,
        connect_args={"connect_timeout": connect_timeout},
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


# Built once (a webhook batch's first statement): a statement built per call cost more of
# the delivery's CPU than the round trip that sends it (docs/performance.md).
_SET_TIMEOUTS = text("SELECT set_config('lock_timeout', :ms, true),"
                     " set_config('statement_timeout', :ms, true)")


@contextmanager
def deadline_transaction(factory: sessionmaker[Session], deadline: float) -> Iterator[Session]:
    """transaction() that commits before `deadline` (time.monotonic()) or not at all.

    Every wait inside is bounded by what is left: on SQLite the busy timeout of the BEGIN
    IMMEDIATE that takes the write lock; on PostgreSQL `lock_timeout` and
    `statement_timeout`, SET LOCAL (this transaction only). A timeout raises the driver's
    OperationalError; time running out before the commit raises DeadlineExceeded. Either
    way the transaction is rolled back whole."""
    remaining_ms = int((deadline - time.monotonic()) * 1000)
    if remaining_ms < MIN_BUDGET_MS:
        raise DeadlineExceeded("no time left to start the transaction")
    token = _BUDGET_MS.set(remaining_ms)
    try:
        with factory() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                # The transaction's own setup, like the SQLite pragmas above, not a
                # statement of the data; it stays here (the store imports db, not back).
                session.connection().execute(_SET_TIMEOUTS, {"ms": f"{remaining_ms}ms"})
            yield session
            if time.monotonic() >= deadline:
                raise DeadlineExceeded("deadline passed before the commit")
    finally:
        _BUDGET_MS.reset(token)
