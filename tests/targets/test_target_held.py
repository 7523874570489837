"""Unsubscribes held by each target's safety limit, over HTTP on both databases: /readyz
adds up every target's latest run (a later run of one target does not hide what the
other holds), /metrics shows each audience's own count."""

from __future__ import annotations

from datetime import timedelta

import requests

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import SyncRun
from syncd.service.app import create_app
from tests.conftest import TEST_AUDIENCE_ID
from tests.service.conftest import served
from tests.targets.conftest import OFFERS_AUDIENCE


def _run(ctx: AppContext, audience: str, *, held: int, minutes_ago: float) -> None:
    finished = utcnow() - timedelta(minutes=minutes_ago)
    with transaction(ctx.sessions) as session:
        session.add(SyncRun(kind="sync", audience_id=audience,
                            outcome="refused" if held else "succeeded",
                            counts={"held_unsubscribes": held},
                            started_at=finished - timedelta(seconds=3), finished_at=finished))


def test_held_unsubscribes_are_counted_per_target_and_added_up(
        targets_ctx: AppContext) -> None:
    _run(targets_ctx, TEST_AUDIENCE_ID, held=7, minutes_ago=5)
    _run(targets_ctx, OFFERS_AUDIENCE, held=0, minutes_ago=1)
    with served(create_app(targets_ctx, webhooks=False)) as url:
        ready = requests.get(url + "/readyz", timeout=5)
        metrics = requests.get(url + "/metrics", timeout=5).text

    assert ready.json()["attention"]["unsubscribes_held"] == 7
    assert f'syncd_sync_unsubscribes_held{{audience="{TEST_AUDIENCE_ID}"}} 7.0' in metrics
    assert f'syncd_sync_unsubscribes_held{{audience="{OFFERS_AUDIENCE}"}} 0.0' in metrics
