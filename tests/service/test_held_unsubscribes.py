"""Unsubscribes held by the safety limit are visible on /readyz and in /metrics, by
counts only, and the service stays ready: the webhooks must keep flowing (I11)."""

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


def _run(ctx: AppContext, *, held: int, minutes_ago: float) -> None:
    finished = utcnow() - timedelta(minutes=minutes_ago)
    with transaction(ctx.sessions) as session:
        session.add(SyncRun(kind="sync", audience_id=TEST_AUDIENCE_ID,
                            outcome="refused" if held else "succeeded",
                            counts={"held_unsubscribes": held},
                            started_at=finished - timedelta(seconds=3), finished_at=finished))


def test_readyz_shows_unsubscribes_held_and_stays_ready(app_context: AppContext) -> None:
    _run(app_context, held=7, minutes_ago=5)
    started = utcnow() - timedelta(hours=3)
    with served(create_app(app_context, started_at=started, webhooks=False)) as url:
        ready = requests.get(url + "/readyz", timeout=5)
        metrics = requests.get(url + "/metrics", timeout=5).text

    assert ready.status_code == 200, ready.text
    assert ready.json()["attention"]["unsubscribes_held"] == 7
    assert "--force" in ready.json()["attention"]["release"]
    assert f'syncd_sync_unsubscribes_held{{audience="{TEST_AUDIENCE_ID}"}} 7.0' in metrics


def test_readyz_has_no_attention_once_a_run_released_them(app_context: AppContext) -> None:
    _run(app_context, held=7, minutes_ago=10)
    _run(app_context, held=0, minutes_ago=1)
    with served(create_app(app_context, webhooks=False)) as url:
        ready = requests.get(url + "/readyz", timeout=5)

    assert "attention" not in ready.json()
