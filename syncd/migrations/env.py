"""Alembic environment: runs on the connection syncd hands it (see syncd.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from syncd.schema import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("syncd migrations run through `syncd db upgrade`")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
