"""purchases: what the soft opt-in basis needs of a customer's purchases (rule 11)

- purchases: contact, day, product category, paid or not; nothing else. Deleted with the
  contact (erasure, retention).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "purchases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("contacts.id", name="fk_purchases_contact_id_contacts",
                                ondelete="CASCADE"), nullable=False),
        sa.Column("purchased_on", sa.Date(), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("paid", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_purchases"),
        sa.UniqueConstraint("contact_id", "purchased_on", "category", "paid",
                            name="uq_purchases_contact_id"),
    )
    op.create_index("ix_purchases_contact_id", "purchases", ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_purchases_contact_id", table_name="purchases")
    op.drop_table("purchases")
