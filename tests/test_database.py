"""The schema: migrations from an empty database, append-only ledger, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import DateTime, inspect, text
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DBAPIError

from syncd.clock import as_utc
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.db import make_engine
from syncd.migrate import current_revision, head_revision, scripts_head, upgrade
from syncd.schema.base import UtcDateTime
from tests.builders import add_contact, confirmed


def test_migrations_create_every_table_from_an_empty_database(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"contacts", "internal_lists", "list_memberships", "consent_events", "suppressions",
            "audit_log", "push_state", "webhook_events", "sync_runs", "cursors",
            "installation"} <= tables
    engine.dispose()


def test_the_head_every_command_checks_is_the_migration_scripts_head() -> None:
    # A new script without HEAD_REVISION moved would make every command refuse the
    # database `syncd db upgrade` just upgraded.
    assert head_revision() == scripts_head()


def test_upgrading_twice_is_harmless(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_consent_ledger_refuses_updates(app_context: AppContext) -> None:
    add_contact(app_context, "ada@example.com", events=confirmed())
    with pytest.raises(DBAPIError, match="append-only"), app_context.engine.begin() as conn:
        conn.execute(text("UPDATE consent_events SET action = 'confirmed' "
                          "WHERE action = 'given'"))


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_template: Path) -> None:
    engine = make_engine(f"sqlite:///{sqlite_template}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_same_consent_event_twice_is_stored_once(app_context: AppContext) -> None:
    events = [("newsletter", Action.GIVEN, confirmed()[0][2])]
    add_contact(app_context, "ada@example.com", events=events)
    add_contact(app_context, "ada@example.com", events=events)
    with app_context.engine.connect() as conn:
        assert conn.execute(text("select count(*) from consent_events")).scalar() == 1


@settings(max_examples=300, deadline=None)
@given(moment=st.datetimes(timezones=st.timezones() | st.just(UTC) | st.none()))
def test_utc_times_are_written_to_sqlite_as_sqlalchemy_writes_them(moment: datetime) -> None:
    # UtcDateTime formats SQLite's text itself (faster); stored values and comparisons in
    # SQL (text order) depend on it being the very text SQLAlchemy's DATETIME writes.
    dialect = sqlite_dialect.dialect()
    ours = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    sqlalchemy_own = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None
    assert sqlalchemy_own is not None
    try:
        expected = as_utc(moment)
    except OverflowError:  # beyond year 1..9999 once in UTC: no such time can be stored
        return
    assert ours(moment) == sqlalchemy_own(expected)
