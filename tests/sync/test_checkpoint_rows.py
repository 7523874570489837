"""The checkpoint's writes of many contacts at once (syncd.store.push_checkpoint): one
executemany on SQLite, one statement of column arrays on PostgreSQL; each contact gets
its own values either way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import PushState
from syncd.store import push_checkpoint
from syncd.store.push_checkpoint import Settlement
from tests.builders import add_contact
from tests.conftest import TEST_AUDIENCE_ID

_LATER = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _rows(ctx: AppContext) -> dict[int, tuple[Any, ...]]:
    with transaction(ctx.sessions) as session:
        return {row[0]: tuple(row[1:]) for row in session.execute(select(
            PushState.contact_id, PushState.settled_revision, PushState.fingerprint,
            PushState.esp_status, PushState.esp_email, PushState.parked_reason,
            PushState.retry_after, PushState.attempt_fingerprint, PushState.esp_origin,
            PushState.pending_requested_at, PushState.esp_permissions))}


def test_a_checkpoint_of_many_contacts_writes_each_its_own_values(
        app_context: AppContext) -> None:
    ctx = app_context
    ids = [add_contact(ctx, f"c{i}@example.org") for i in range(3)]
    push_checkpoint.settle(ctx.engine, TEST_AUDIENCE_ID, [
        Settlement(ids[0], 1, "f" * 64, "subscribed", "c0@example.org", esp_origin="pushed"),
        Settlement(ids[1], 2, None, None, None, parked_reason="refused",
                   retry_after=_LATER, attempt_fingerprint="a" * 64),
        Settlement(ids[2], 3, "e" * 64, "pending", "c2@example.org",
                   pending_requested_at=_LATER, esp_permissions='{"p1":true}')])

    assert _rows(ctx) == {
        ids[0]: (1, "f" * 64, "subscribed", "c0@example.org", None, None, None, "pushed",
                 None, None),
        ids[1]: (2, None, None, None, "refused", _LATER, "a" * 64, None, None, None),
        ids[2]: (3, "e" * 64, "pending", "c2@example.org", None, None, None, None, _LATER,
                 '{"p1":true}')}


def test_attempt_markers_of_many_contacts_each_carry_their_own_fingerprint(
        app_context: AppContext) -> None:
    ctx = app_context
    ids = [add_contact(ctx, f"c{i}@example.org") for i in range(3)]
    push_checkpoint.mark_attempts(ctx.engine, TEST_AUDIENCE_ID,
                             [(cid, str(n) * 64) for n, cid in enumerate(ids)])

    assert {cid: row[6] for cid, row in _rows(ctx).items()} == {
        cid: str(n) * 64 for n, cid in enumerate(ids)}


def test_a_checkpoint_with_one_contact_twice_applies_both_in_order(
        app_context: AppContext) -> None:
    ctx = app_context
    cid = add_contact(ctx, "twice@example.org")
    push_checkpoint.settle(ctx.engine, TEST_AUDIENCE_ID, [
        Settlement(cid, 1, "1" * 64, "subscribed", "twice@example.org", esp_origin="pushed"),
        Settlement(cid, 2, "2" * 64, "subscribed", "twice@example.org")])

    # The second keeps the first's origin (a None is kept as it is).
    assert _rows(ctx)[cid][:3] == (2, "2" * 64, "subscribed")
    assert _rows(ctx)[cid][7] == "pushed"


def test_a_checkpoint_never_moves_a_settled_revision_back(app_context: AppContext) -> None:
    ctx = app_context
    cid = add_contact(ctx, "newer@example.org")
    push_checkpoint.settle(ctx.engine, TEST_AUDIENCE_ID,
                      [Settlement(cid, 5, "5" * 64, "subscribed", "newer@example.org")])
    push_checkpoint.settle(ctx.engine, TEST_AUDIENCE_ID,
                      [Settlement(cid, 4, "4" * 64, "subscribed", "newer@example.org")])

    assert _rows(ctx)[cid][:2] == (5, "5" * 64)
