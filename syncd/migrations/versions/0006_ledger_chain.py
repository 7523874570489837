"""ledger chain: a hash chain over the consent ledger, tombstones, DELETE guarded

- consent_events.chain_seq / chain_prev / chain_hash: each event's place and links
  (syncd.consent.chain). Existing events are linked in id order (the order they were
  appended), so an installation upgrades to a chain that verifies.
- ledger_chain_head: the newest link (one row), locked by every append on PostgreSQL.
- ledger_tombstones: what erasure leaves of a removed event (place and links only).
- The append-only trigger is joined by one that refuses a DELETE of an event that has no
  tombstone: removing evidence goes through chain.remove_events or not at all.

SQLite rebuilds the table to make the columns NOT NULL, which drops its triggers: they are
created again after.

Revision ID: 0006
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from syncd.clock import utcnow
from syncd.store.ledger_hash import GENESIS, HASHED_FIELDS, event_hash

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_UPDATE_MESSAGE = "consent_events is append-only"
_DELETE_MESSAGE = ("consent_events: an event is removed only with its tombstone "
                   "(syncd.consent.chain.remove_events)")


def _drop_triggers(postgres: bool) -> None:
    on = " ON consent_events" if postgres else ""
    op.execute("DROP TRIGGER IF EXISTS consent_events_append_only" + on)
    op.execute("DROP TRIGGER IF EXISTS consent_events_tombstoned" + on)


def _update_trigger(postgres: bool) -> None:
    if postgres:  # the function syncd_refuse_update() of 0001 is still there
        op.execute("CREATE TRIGGER consent_events_append_only BEFORE UPDATE ON consent_events "
                   "FOR EACH ROW EXECUTE FUNCTION syncd_refuse_update()")
    else:
        op.execute("CREATE TRIGGER consent_events_append_only BEFORE UPDATE ON consent_events "
                   f"BEGIN SELECT RAISE(ABORT, '{_UPDATE_MESSAGE}'); END")


def _delete_trigger(postgres: bool) -> None:
    guard = ("NOT EXISTS (SELECT 1 FROM ledger_tombstones t WHERE t.seq = OLD.chain_seq "
             "AND t.event_hash = OLD.chain_hash)")
    if postgres:
        op.execute("CREATE FUNCTION syncd_refuse_untombstoned_delete() RETURNS trigger "
                   f"LANGUAGE plpgsql AS $$ BEGIN IF {guard} THEN RAISE EXCEPTION "
                   f"'{_DELETE_MESSAGE}'; END IF; RETURN OLD; END $$")
        op.execute("CREATE TRIGGER consent_events_tombstoned BEFORE DELETE ON consent_events "
                   "FOR EACH ROW EXECUTE FUNCTION syncd_refuse_untombstoned_delete()")
    else:
        op.execute("CREATE TRIGGER consent_events_tombstoned BEFORE DELETE ON consent_events "
                   f"WHEN {guard} BEGIN SELECT RAISE(ABORT, '{_DELETE_MESSAGE}'); END")


def _backfill(bind: Any) -> tuple[int, str]:
    """Link every existing event in id order; returns the head."""
    events = sa.table("consent_events", sa.column("id"), sa.column("chain_seq"),
                      sa.column("chain_prev"), sa.column("chain_hash"),
                      *(sa.column(name, sa.DateTime(timezone=True))
                        if name.endswith("_at") else sa.column(name)
                        for name in HASHED_FIELDS))
    seq, prev = 0, GENESIS
    after = 0
    while True:
        page = bind.execute(sa.select(events).where(events.c.id > after)
                            .order_by(events.c.id).limit(1000)).mappings().all()
        if not page:
            return seq, prev
        updates = []
        for row in page:
            seq += 1
            link = event_hash(prev, row)
            updates.append({"row_id": row["id"], "s": seq, "p": prev, "h": link})
            prev = link
        bind.execute(events.update().where(events.c.id == sa.bindparam("row_id"))
                     .values(chain_seq=sa.bindparam("s"), chain_prev=sa.bindparam("p"),
                             chain_hash=sa.bindparam("h")), updates)
        after = page[-1]["id"]


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.create_table(
        "ledger_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_chain_head")))
    op.create_table(
        "ledger_tombstones",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("event_hash", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_tombstones")))
    _drop_triggers(postgres)
    with op.batch_alter_table("consent_events") as batch:
        batch.add_column(sa.Column("chain_seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("chain_prev", sa.String(64), nullable=True))
        batch.add_column(sa.Column("chain_hash", sa.String(64), nullable=True))
    seq, link = _backfill(bind)
    with op.batch_alter_table("consent_events") as batch:
        batch.alter_column("chain_seq", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("chain_prev", existing_type=sa.String(64), nullable=False)
        batch.alter_column("chain_hash", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint(op.f("uq_consent_events_chain_seq"), ["chain_seq"])
    op.bulk_insert(sa.table("ledger_chain_head", sa.column("id"), sa.column("seq"),
                            sa.column("hash"), sa.column("updated_at",
                                                         sa.DateTime(timezone=True))),
                   [{"id": 1, "seq": seq, "hash": link, "updated_at": utcnow()}])
    _update_trigger(postgres)
    _delete_trigger(postgres)


def downgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    _drop_triggers(postgres)
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS syncd_refuse_untombstoned_delete()")
    with op.batch_alter_table("consent_events") as batch:
        batch.drop_constraint(op.f("uq_consent_events_chain_seq"), type_="unique")
        batch.drop_column("chain_hash")
        batch.drop_column("chain_prev")
        batch.drop_column("chain_seq")
    op.drop_table("ledger_tombstones")
    op.drop_table("ledger_chain_head")
    _update_trigger(postgres)
