"""Alembic migrations of the schema (syncd.schema); `syncd db upgrade` runs them."""
