"""sync engine: push attempts (write-ahead marker), temporary refusals, incremental index

- push_state.attempt_fingerprint: what syncd SENT and has not yet seen confirmed (set in
  a transaction before the ESP call, cleared by the checkpoint). After a crash or a
  timed-out batch, an "already a member" answer for such a contact is our own add, not
  a foreign member (I8: a crash leads at most to a harmless re-push).
- push_state.retry_after: Mailchimp's "signed up to a lot of lists very recently" asks
  to come back after hours; the contact is skipped until then.
- ix_contacts_id_revision: the incremental read (revision > settled_revision) walks
  contacts by id reading only the index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("push_state") as batch:
        batch.add_column(sa.Column("attempt_fingerprint", sa.String(64), nullable=True))
        batch.add_column(sa.Column("retry_after", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_contacts_id_revision", "contacts", ["id", "revision"])
    op.create_index("ix_push_state_audience_id_esp_status", "push_state",
                    ["audience_id", "esp_status"])


def downgrade() -> None:
    op.drop_index("ix_push_state_audience_id_esp_status", table_name="push_state")
    op.drop_index("ix_contacts_id_revision", table_name="contacts")
    with op.batch_alter_table("push_state") as batch:
        batch.drop_column("retry_after")
        batch.drop_column("attempt_fingerprint")
