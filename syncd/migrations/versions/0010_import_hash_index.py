"""contacts.import_hash indexed: a re-import finds an unchanged line's contact by the line's
content hash alone, before decoding or checking the line (syncd.store.import_marks).
The hashes of earlier imports (version syncd-import-v1, over the decoded line) match no
line any more: the first re-import after this applies every line once (changing
nothing) and marks it with the new hash.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_contacts_import_hash", "contacts", ["import_hash"])


def downgrade() -> None:
    op.drop_index("ix_contacts_import_hash", table_name="contacts")
