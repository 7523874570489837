"""The schema: migrations from an empty database, append-only ledger, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.db import make_engine
from syncd.migrate import current_revision, head_revision, upgrade
from tests.builders import add_contact, confirmed


def test_migrations_create_every_table_from_an_empty_database(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"contacts", "internal_lists", "list_memberships", "consent_events", "suppressions",
            "audit_log", "push_state", "webhook_events", "sync_runs", "cursors",
            "installation"} <= tables
    engine.dispose()


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
