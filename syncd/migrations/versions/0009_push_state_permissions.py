"""push_state permissions: the GDPR marketing permissions Mailchimp last had for a member

- push_state.esp_permissions: JSON object, permission id -> enabled, as syncd last pushed
  them or as the audience pull / reconciliation last read them. A permission that moves
  from on (here) to off (read at Mailchimp) is the member's withdrawal of the purpose it
  maps to (syncd.sync.permission_moves); one never on is not. NULL: not known yet, so no
  existing row can be taken for a withdrawal.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("push_state", sa.Column("esp_permissions", sa.String(2000), nullable=True))


def downgrade() -> None:
    op.drop_column("push_state", "esp_permissions")
