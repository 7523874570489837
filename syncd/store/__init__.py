"""The store: every SQL statement of syncd, one module per group of tables.

Each change has one set-based implementation that takes a connection or session and many
rows; reads return typed dataclasses. Nothing above this package builds SQL
(docs/architecture.md draws the layers)."""
