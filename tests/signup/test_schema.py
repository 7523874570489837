"""Migration 0005 creates exactly what syncd/schema.py declares for the sign-up tables."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from syncd.db import make_engine
from syncd.schema import Base


@pytest.mark.parametrize("table", ["signup_tokens", "outbox"])
def test_the_migration_matches_the_schema(database_url: str, table: str) -> None:
    engine = make_engine(database_url)
    found = inspect(engine)
    columns = {c["name"]: c["nullable"] for c in found.get_columns(table)}
    indexes = {tuple(i["column_names"]) for i in found.get_indexes(table)}
    engine.dispose()
    declared = Base.metadata.tables[table]

    assert columns == {c.name: c.nullable for c in declared.columns}
    assert {tuple(c.name for c in i.columns) for i in declared.indexes} <= indexes
