"""import marks: the content hash of the import line last applied to a contact

- contacts.import_hash: SHA-256 of that line's canonical content (syncd.crm.import_format).
- contacts.import_revision: the contact's revision right after that line was applied.

A later import skips a line whose hash equals the stored one while the revision has not
moved since (nothing else changed the contact): applying it again would change nothing.
Existing contacts start without a mark, so their next import applies every line.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("import_hash", sa.String(64), nullable=True))
    op.add_column("contacts", sa.Column("import_revision", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("contacts", "import_revision")
    op.drop_column("contacts", "import_hash")
