"""contacts.change_mark, indexed: the sync reads only the contacts marked since its cursor
(syncd.store.candidates explains the mark and why it commits in order).

Existing contacts get 0; no audience has a cursor yet, so the first sync after this reads
every contact as before and stores the first cursor. An INSERT that does not name the
column still gets a mark: on PostgreSQL by the column's default (this transaction's id),
on SQLite by a trigger (SQLite's defaults must be constants).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_SQLITE_TRIGGER = """
CREATE TRIGGER contacts_change_mark_on_insert AFTER INSERT ON contacts
WHEN NEW.change_mark = 0
BEGIN
    UPDATE contacts SET change_mark = coalesce((SELECT max(change_mark) FROM contacts), 0) + 1
    WHERE id = NEW.id;
END
"""


def upgrade() -> None:
    op.add_column("contacts", sa.Column("change_mark", sa.BigInteger(), nullable=False,
                                        server_default="0"))
    op.create_index("ix_contacts_change_mark", "contacts", ["change_mark"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE contacts ALTER COLUMN change_mark "
                   "SET DEFAULT pg_current_xact_id()::text::bigint")
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER IF EXISTS contacts_change_mark_on_insert")
    op.drop_index("ix_contacts_change_mark", table_name="contacts")
    op.drop_column("contacts", "change_mark")
