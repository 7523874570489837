"""I7, one runner: at most one sync (or reconcile) run per audience at a time, across
replicas and the one-shot command.

PostgreSQL: a session advisory lock on a dedicated, unpooled connection; if the holder
dies, its connection closes and PostgreSQL frees the lock. SQLite (one machine by
nature): an exclusive `flock` on a file beside the database; the kernel frees it when
the holder dies, even on kill -9."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from syncd.errors import SyncdError
from syncd.logs import get_logger
from syncd.store import locks

log = get_logger(__name__)

# Server-side TCP keepalives for the lock session: if the holder's host vanishes without
# closing its socket (power loss, network partition), PostgreSQL notices in about a minute
# and frees the lock, instead of after the kernel default of two hours.
_LOCK_SESSION_OPTIONS = (
    "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3")
LOCK_CONNECT_TIMEOUT_SECONDS = 5


class RunnerBusy(SyncdError):
    """Another run holds the lock; nothing was done."""

    def __init__(self, name: str) -> None:
        kind = name.split(":", maxsplit=1)[0]
        super().__init__(f"another {kind} run is in progress (lock {name!r}); nothing done")
        self.name = name


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_try_advisory_lock."""
    digest = hashlib.sha256(f"syncd:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def single_runner(engine: Engine, name: str) -> Iterator[None]:
    """Hold the named lock for the block, or raise RunnerBusy at once (never waits)."""
    if engine.dialect.name == "postgresql":
        with _postgres_lock(engine, name):
            yield
    else:
        with _file_lock(engine, name):
            yield


def _lock_engine(engine: Engine, name: str) -> Engine:
    """Unpooled (a pooled connection could go back to the pool still holding the lock),
    with a connect timeout (a down database fails the run fast instead of hanging it),
    keepalives, and a name that `pg_stat_activity` shows to whoever looks for the holder."""
    existing = engine.url.query.get("options")
    options = " ".join(part for part in (
        existing if isinstance(existing, str) else " ".join(existing or ()),
        _LOCK_SESSION_OPTIONS) if part)
    return create_engine(engine.url, poolclass=NullPool, connect_args={
        "connect_timeout": LOCK_CONNECT_TIMEOUT_SECONDS,
        "application_name": f"syncd lock {name}"[:63],
        "options": options,
    })


@contextmanager
def _postgres_lock(engine: Engine, name: str) -> Iterator[None]:
    dedicated = _lock_engine(engine, name)
    key = advisory_key(name)
    try:
        with dedicated.connect() as raw:
            conn = raw.execution_options(isolation_level="AUTOCOMMIT")
            locks.keep_session_alive(conn)
            if not locks.try_lock(conn, key):
                raise RunnerBusy(name)
            try:
                yield
            finally:
                _release(conn, key, name)
    finally:
        dedicated.dispose()


def _release(conn: Connection, key: int, name: str) -> None:
    """Unlock; never raise from here, which would hide how the run itself ended."""
    try:
        released = locks.unlock(conn, key)
    except DBAPIError as exc:
        # The session is gone (database restart, terminated backend), and the lock with it:
        # from that moment another runner could have started.
        log.warning("runner lock connection lost during the run", lock=name,
                    error=type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__)
        return
    if not released:
        log.warning("runner lock was no longer held at the end of the run", lock=name)


def lock_file_path(engine: Engine, name: str) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        base = Path(os.environ.get("TMPDIR", "/tmp")) / f"syncd-{os.getpid()}"  # noqa: S108
    else:
        base = Path(database)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
    return base.with_name(f"{base.name}.{safe}.lock")


@contextmanager
def _file_lock(engine: Engine, name: str) -> Iterator[None]:
    path = lock_file_path(engine, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunnerBusy(name) from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
