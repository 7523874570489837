"""Retention (Art. 5(1)(e)): old raw webhook bodies are nulled, old run history deleted;
recent data and unapplied events are kept."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.db import transaction
from syncd.retention import prune
from syncd.schema import SyncRun, WebhookEvent

BODY = "type=unsubscribe&data%5Bemail%5D=ann%40example.org"


def _event(ctx: AppContext, received_at: datetime, status: str = "applied") -> int:
    with transaction(ctx.sessions) as session:
        event = WebhookEvent(dedupe_key=uuid.uuid4().hex, kind="unsubscribe", list_id="l1",
                             fired_at=received_at, received_at=received_at,
                             address_hmac="ab" * 32, status=status, attempts=1, body=BODY)
        session.add(event)
        session.flush()
        return event.id


def _run(ctx: AppContext, started_at: datetime) -> int:
    with transaction(ctx.sessions) as session:
        run = SyncRun(kind="sync", audience_id="a", started_at=started_at,
                      finished_at=started_at + timedelta(seconds=5), outcome="succeeded",
                      counts={})
        session.add(run)
        session.flush()
        return run.id


def _body(ctx: AppContext, event_id: int) -> str | None:
    with transaction(ctx.sessions) as session:
        event = session.get(WebhookEvent, event_id)
        assert event is not None, "the row itself is kept for dedupe and audit"
        return event.body


def test_old_bodies_of_settled_events_are_nulled_and_their_rows_kept(
        app_context: AppContext) -> None:
    now = utcnow()
    old = _event(app_context, now - timedelta(days=31))
    ignored = _event(app_context, now - timedelta(days=40), status="ignored")

    counts = prune(app_context, now=now)

    assert (_body(app_context, old), _body(app_context, ignored)) == (None, None)
    assert counts["webhook_bodies_nulled"] == 2


def test_recent_bodies_are_kept(app_context: AppContext) -> None:
    now = utcnow()
    recent = _event(app_context, now - timedelta(days=29))

    counts = prune(app_context, now=now)

    assert _body(app_context, recent) == BODY
    assert counts["webhook_bodies_nulled"] == 0


def test_old_body_of_an_unapplied_event_is_kept(app_context: AppContext) -> None:
    now = utcnow()
    parked = _event(app_context, now - timedelta(days=60), status="parked")
    waiting = _event(app_context, now - timedelta(days=60), status="received")

    counts = prune(app_context, now=now)

    assert (_body(app_context, parked), _body(app_context, waiting)) == (BODY, BODY)
    assert counts["webhook_bodies_kept_unsettled"] == 2


def test_run_history_older_than_retention_is_deleted_and_newer_kept(
        app_context: AppContext) -> None:
    now = utcnow()
    old = _run(app_context, now - timedelta(days=401))
    recent = _run(app_context, now - timedelta(days=399))

    counts = prune(app_context, now=now)

    with transaction(app_context.sessions) as session:
        left = set(session.scalars(select(SyncRun.id)))
    assert left == {recent}
    assert old not in left
    assert counts["sync_runs_deleted"] == 1


def test_prune_twice_changes_nothing_the_second_time(app_context: AppContext) -> None:
    now = utcnow()
    _event(app_context, now - timedelta(days=31))
    _run(app_context, now - timedelta(days=500))
    prune(app_context, now=now)

    again = prune(app_context, now=now)

    assert (again["webhook_bodies_nulled"], again["sync_runs_deleted"]) == (0, 0)


def test_prune_command_prints_the_counts(app_context: AppContext, database_url: str) -> None:
    from syncd.cli import _register_all, app

    _event(app_context, utcnow() - timedelta(days=45))
    if not any(command.name == "prune" for command in app.registered_commands):
        _register_all()  # once per process: the app is shared with other tests

    result = CliRunner().invoke(app, ["prune", "--json"], env={
        "SYNCD_DATABASE_URL": database_url, "SYNCD_LOG_FORMAT": "json"})

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["webhook_bodies_nulled"] == 1
