"""Fixtures for the command-line tests: the real Typer app, invoked in-process, and
databases that exist but were never migrated (on SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

Invoke = Callable[..., Result]


@pytest.fixture
def syncd() -> Invoke:
    """`syncd ARGS` through the real app, with SYNCD_* variables from `env`."""
    from syncd.cli import _register_all, app

    if not any(command.name == "import" for command in app.registered_commands):
        _register_all()  # once per process: the app is shared with other tests

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(app, list(args), env=env)

    return invoke


@pytest.fixture(params=["sqlite", "postgresql"])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database that exists and is empty: no syncd schema."""
    if request.param == "sqlite":
        path = tmp_path / "empty.db"
        path.touch()
        yield f"sqlite:///{path}"
        return
    server: str = request.getfixturevalue("postgres_server_url")
    name = f"syncd_unmigrated_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def tables_in(url: str) -> list[str]:
    from sqlalchemy import inspect

    from syncd.db import make_engine

    engine = make_engine(url)
    try:
        return sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()
