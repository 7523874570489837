"""PostgreSQL advisory locks and the lock session's setup: the statements of the one-runner
lock (syncd.runner_lock) and of the schema migration's lock (syncd.migrate)."""

from __future__ import annotations

from sqlalchemy import Connection, text

_TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:key)")
_XACT_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_NO_IDLE_TIMEOUT = text("SET idle_session_timeout = 0")


def try_lock(conn: Connection, key: int) -> bool:
    """Take the session lock `key` if free (never waits); True when taken."""
    return bool(conn.execute(_TRY_LOCK, {"key": key}).scalar())


def unlock(conn: Connection, key: int) -> bool:
    """Release the session lock `key`; False when this session no longer held it."""
    return bool(conn.execute(_UNLOCK, {"key": key}).scalar())


def lock_for_transaction(conn: Connection, key: int) -> None:
    """Wait for the lock `key`, held until the transaction ends."""
    conn.execute(_XACT_LOCK, {"key": key})


def keep_session_alive(conn: Connection) -> None:
    """Turn off an idle_session_timeout set for the role or database (PostgreSQL >= 14):
    it would end a lock session that sits idle for the whole run, and free the lock."""
    version = conn.dialect.server_version_info or (0,)
    if version >= (14,):
        conn.execute(_NO_IDLE_TIMEOUT)
