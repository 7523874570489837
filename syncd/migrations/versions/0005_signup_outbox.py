"""sign-up: confirmation tokens (hash only) and the durable mail outbox

- signup_tokens: one row per confirmation link; the SHA-256 of the token, the purposes
  it confirms, when it expires and when it was used (single use).
- outbox: mails decided in a transaction and sent later by the service's outbox job
  (the HTTP answer never waits for SMTP; retried with backoff; survives restarts).

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "signup_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("contacts.id", name="fk_signup_tokens_contact_id_contacts",
                                ondelete="CASCADE"), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_signup_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_signup_tokens_token_hash"),
    )
    op.create_index("ix_signup_tokens_contact_id", "signup_tokens", ["contact_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("contacts.id", name="fk_outbox_contact_id_contacts",
                                ondelete="CASCADE"), nullable=False),
        sa.Column("address_hmac", sa.String(64), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("token_id", sa.Integer(),
                  sa.ForeignKey("signup_tokens.id", name="fk_outbox_token_id_signup_tokens",
                                ondelete="CASCADE"), nullable=True),
        sa.Column("token_nonce", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("claimed_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_contact_id", "outbox", ["contact_id"])
    op.create_index("ix_outbox_address_hmac", "outbox", ["address_hmac"])
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("signup_tokens")
