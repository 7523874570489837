"""member state: what Mailchimp has for each member syncd knows, and address history

- push_state.esp_last_changed / esp_opt_at / esp_opt_ip: Mailchimp's `last_changed` and
  opt-in proof as last read (audience pull, reconciliation). Reconciliation compares a
  status with the one known at that moment, so an admin edit (which moves last_changed)
  is never recorded as a new unsubscribe (I13).
- push_state.esp_origin: `pushed` (syncd added it) or `pulled` (in the audience before).
- push_state.pending_requested_at: when syncd asked for `pending`; only a `subscribe`
  after it can be the person's confirmation click.
- address_history: keyed hashes of a contact's earlier addresses, so a suppression of the
  person covers every address they had (I12).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("push_state") as batch:
        batch.add_column(sa.Column("esp_last_changed", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("esp_opt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("esp_opt_ip", sa.String(64), nullable=True))
        batch.add_column(sa.Column("esp_origin", sa.String(16), nullable=True))
        batch.add_column(sa.Column("pending_requested_at", sa.DateTime(timezone=True),
                                   nullable=True))
    op.create_table(
        "address_history",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("contact_id", sa.Integer,
                  sa.ForeignKey("contacts.id", ondelete="CASCADE",
                                name="fk_address_history_contact_id_contacts"),
                  nullable=False),
        sa.Column("address_hmac", sa.String(64), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_address_history"),
        sa.UniqueConstraint("contact_id", "address_hmac",
                            name="uq_address_history_contact_id"),
    )
    op.create_index("ix_address_history_contact_id", "address_history", ["contact_id"])
    op.create_index("ix_address_history_address_hmac", "address_history", ["address_hmac"])
    # Members pushed before this revision were all added by syncd.
    op.execute("UPDATE push_state SET esp_origin = 'pushed' WHERE esp_status IS NOT NULL")


def downgrade() -> None:
    op.drop_index("ix_address_history_address_hmac", table_name="address_history")
    op.drop_index("ix_address_history_contact_id", table_name="address_history")
    op.drop_table("address_history")
    with op.batch_alter_table("push_state") as batch:
        for name in ("pending_requested_at", "esp_origin", "esp_opt_ip", "esp_opt_at",
                     "esp_last_changed"):
            batch.drop_column(name)
