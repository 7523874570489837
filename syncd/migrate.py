"""Schema migrations (Alembic), shipped inside the package so an installed syncd can
upgrade its own database: `syncd db upgrade`.

Every other command only checks that the database is at head. That check needs neither
Alembic nor its scripts: importing Alembic and reading the migration files cost about
60 ms of each command's start (0.65 -> 0.59 s for a 1-line import), so the head is a
constant here (a test holds it equal to the scripts' head) and the current revision is
read from Alembic's version table directly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, column, inspect, select, table

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The newest script's revision (tests/test_database.py holds it to the scripts' head).
HEAD_REVISION = "0011"
# Alembic's default version table: one row, its one column the current revision.
_VERSION_TABLE = table("alembic_version", column("version_num"))
_CURRENT = select(_VERSION_TABLE.c.version_num)


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    config = _config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together: one upgrades, the others wait here and then find
            # the schema at head (DDL is transactional; the lock ends with the transaction).
            from syncd.runner_lock import advisory_key
            from syncd.store import locks

            locks.lock_for_transaction(connection, advisory_key("schema-migration"))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def head_revision() -> str:
    return HEAD_REVISION


def scripts_head() -> str | None:
    """The head as the migration scripts give it (Alembic reads every script)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None before its first upgrade."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(_VERSION_TABLE.name):
            return None
        value = connection.execute(_CURRENT).scalar()
        return None if value is None else str(value)
