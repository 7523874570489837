"""contacts.change_mark, indexed: the sync reads only the contacts marked since its cursor
(syncd.store.candidates explains the mark and why it commits in order).

Existing contacts get 0; no audience has a cursor yet, so the first sync after this reads
every contact as before and stores the first cursor. An INSERT that does not name the
column still gets a mark: on PostgreSQL by the column's default (this transaction's id),
on SQLite by a trigger (SQLite's defaults must be constants). Triggers on push_state mark
the contact whose row is deleted or whose settled revision goes down (the audience pull,
an operator's reset): it is a candidate again without a new revision. The mark here is
the expression of syncd.schema.ChangeMark, spelled out (a migration stays as written).

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

# The mark: coalesce((SELECT max(change_mark) FROM contacts), 0) + 1 on SQLite, the
# transaction's id on PostgreSQL. Constant text, spelled out per statement.
_SQLITE = (
    """CREATE TRIGGER contacts_change_mark_on_insert AFTER INSERT ON contacts
    WHEN NEW.change_mark = 0
    BEGIN UPDATE contacts
        SET change_mark = coalesce((SELECT max(change_mark) FROM contacts), 0) + 1
        WHERE id = NEW.id; END""",
    """CREATE TRIGGER push_state_deleted_marks AFTER DELETE ON push_state
    BEGIN UPDATE contacts
        SET change_mark = coalesce((SELECT max(change_mark) FROM contacts), 0) + 1
        WHERE id = OLD.contact_id; END""",
    """CREATE TRIGGER push_state_lowered_marks AFTER UPDATE OF settled_revision ON push_state
    WHEN NEW.settled_revision < OLD.settled_revision
    BEGIN UPDATE contacts
        SET change_mark = coalesce((SELECT max(change_mark) FROM contacts), 0) + 1
        WHERE id = NEW.contact_id; END""")
_POSTGRESQL = (
    "ALTER TABLE contacts ALTER COLUMN change_mark SET DEFAULT pg_current_xact_id()::text::bigint",
    """CREATE FUNCTION push_state_marks_contact() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE contacts SET change_mark = pg_current_xact_id()::text::bigint
        WHERE id = OLD.contact_id;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER push_state_deleted_marks AFTER DELETE ON push_state
    FOR EACH ROW EXECUTE FUNCTION push_state_marks_contact()""",
    """CREATE TRIGGER push_state_lowered_marks AFTER UPDATE OF settled_revision ON push_state
    FOR EACH ROW WHEN (NEW.settled_revision < OLD.settled_revision)
    EXECUTE FUNCTION push_state_marks_contact()""")


def upgrade() -> None:
    op.add_column("contacts", sa.Column("change_mark", sa.BigInteger(), nullable=False,
                                        server_default="0"))
    op.create_index("ix_contacts_change_mark", "contacts", ["change_mark"])
    for statement in (_POSTGRESQL if op.get_bind().dialect.name == "postgresql"
                      else _SQLITE):
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in ("push_state_deleted_marks", "push_state_lowered_marks"):
        op.execute(f"DROP TRIGGER {name}" + (" ON push_state" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION push_state_marks_contact()")
    else:
        op.execute("DROP TRIGGER contacts_change_mark_on_insert")
    op.drop_index("ix_contacts_change_mark", table_name="contacts")
    op.drop_column("contacts", "change_mark")
