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

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from syncd.errors import SyncdError


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


@contextmanager
def _postgres_lock(engine: Engine, name: str) -> Iterator[None]:
    # Unpooled: a pooled connection could go back to the pool still holding the lock.
    dedicated = create_engine(engine.url, poolclass=NullPool)
    key = advisory_key(name)
    try:
        with dedicated.connect() as raw:
            conn = raw.execution_options(isolation_level="AUTOCOMMIT")
            got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
            if not got:
                raise RunnerBusy(name)
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        dedicated.dispose()


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
