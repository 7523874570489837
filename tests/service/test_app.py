"""The HTTP app on a real uvicorn: liveness, readiness (database, schema, sync age),
Prometheus metrics, and request logs that hold the route template, never the path."""

from __future__ import annotations

from datetime import timedelta

import requests
from sqlalchemy import text
from structlog.testing import capture_logs

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.db import transaction
from syncd.migrate import head_revision
from syncd.schema import SyncRun
from syncd.service.app import create_app
from tests.conftest import TEST_WEBHOOK_SECRET, fixture_body, make_settings
from tests.service.conftest import BlockablePostgres, served, wait_until

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _successful_sync(ctx: AppContext, minutes_ago: float) -> None:
    finished = utcnow() - timedelta(minutes=minutes_ago)
    with transaction(ctx.sessions) as session:
        session.add(SyncRun(kind="sync", audience_id="a", outcome="succeeded", counts={},
                            started_at=finished - timedelta(seconds=3), finished_at=finished))


def test_healthz_says_ok(app_context: AppContext) -> None:
    with served(create_app(app_context, webhooks=False)) as url:
        answer = requests.get(url + "/healthz", timeout=5)

    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_a_fresh_service_is_ready_before_its_first_sync(app_context: AppContext) -> None:
    with served(create_app(app_context, webhooks=False)) as url:
        answer = requests.get(url + "/readyz", timeout=5)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ready"


def test_not_ready_without_a_sync_once_up_longer_than_the_maximum_age(
        app_context: AppContext) -> None:
    started = utcnow() - timedelta(hours=3)  # readiness_max_sync_age_minutes is 120
    with served(create_app(app_context, started_at=started, webhooks=False)) as url:
        answer = requests.get(url + "/readyz", timeout=5)

    assert (answer.status_code, answer.json()["failing"]) == (503, ["last_sync"])


def test_not_ready_when_the_last_successful_sync_is_too_old(app_context: AppContext) -> None:
    _successful_sync(app_context, minutes_ago=121)
    started = utcnow() - timedelta(hours=3)
    with served(create_app(app_context, started_at=started, webhooks=False)) as url:
        answer = requests.get(url + "/readyz", timeout=5)

    assert (answer.status_code, answer.json()["failing"]) == (503, ["last_sync"])


def test_ready_with_a_recent_successful_sync(app_context: AppContext) -> None:
    _successful_sync(app_context, minutes_ago=5)
    started = utcnow() - timedelta(hours=3)
    with served(create_app(app_context, started_at=started, webhooks=False)) as url:
        answer = requests.get(url + "/readyz", timeout=5)

    assert answer.status_code == 200, answer.text


def test_not_ready_when_the_schema_is_behind(app_context: AppContext) -> None:
    head = head_revision()
    with app_context.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        with served(create_app(app_context, webhooks=False)) as url:
            answer = requests.get(url + "/readyz", timeout=5)
    finally:  # the PostgreSQL test database is shared by the worker's later tests
        with app_context.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :head"),
                         {"head": head})

    assert (answer.status_code, answer.json()["failing"]) == (503, ["schema"])


def test_readiness_fails_while_the_database_is_down_and_recovers(
        blockable_postgres: BlockablePostgres) -> None:
    ctx = AppContext.open(make_settings(blockable_postgres.url))
    ctx.sync_lists()
    with served(create_app(ctx, webhooks=False)) as url:
        assert requests.get(url + "/readyz", timeout=5).status_code == 200

        blockable_postgres.block()
        down = requests.get(url + "/readyz", timeout=10)
        alive = requests.get(url + "/healthz", timeout=5)

        blockable_postgres.unblock()
        wait_until(lambda: requests.get(url + "/readyz", timeout=10).status_code == 200, 20,
                   "readiness after the database came back")
    ctx.close()
    assert (down.status_code, down.json()["failing"]) == (503, ["database"])
    assert alive.status_code == 200  # liveness never depends on the database


def test_metrics_are_prometheus_text_with_the_last_sync_from_the_database(
        app_context: AppContext) -> None:
    _successful_sync(app_context, minutes_ago=1)
    with transaction(app_context.sessions) as session:
        finished = session.query(SyncRun.finished_at).scalar()
    with served(create_app(app_context, webhooks=False)) as url:
        answer = requests.get(url + "/metrics", timeout=5)

    assert answer.headers["content-type"].startswith("text/plain")
    (sample,) = [line for line in answer.text.splitlines()
                 if line.startswith('syncd_last_success_timestamp_seconds{kind="sync"}')]
    assert float(sample.split()[-1]) == finished.timestamp()
    assert "syncd_runs_total" in answer.text


def test_webhook_requests_are_logged_by_route_template_never_path_or_query(
        app_context: AppContext) -> None:
    target = f"/webhooks/mailchimp/{TEST_WEBHOOK_SECRET}?email=ann%40example.org"
    with served(create_app(app_context)) as url, capture_logs() as captured:
        answer = requests.post(url + target, data=fixture_body("unsubscribe.form"),
                               headers=FORM, timeout=10)
        wait_until(lambda: any(e["event"] == "http request" for e in captured), 5,
                   "the request log line")

    assert answer.status_code == 200, answer.text
    (line,) = [e for e in captured if e["event"] == "http request"]
    assert (line["method"], line["route"], line["status"]) == (
        "POST", "/webhooks/mailchimp/{secret}", 200)
    assert TEST_WEBHOOK_SECRET not in repr(captured)
    assert "example.org" not in repr(captured)


def _total(body: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (exposition text)."""
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    total = 0.0
    for line in body.splitlines():
        if line.startswith((name + "{", name + " ")):
            series, value = line.rsplit(" ", 1)
            if wanted <= set(series[len(name):].strip("{}").split(",")):
                total += float(value)
    return total


def test_metrics_move_after_a_sync_and_a_webhook(database_url: str) -> None:
    from mailchimp_emulator import DEFAULT_API_KEY, MailchimpEmulator
    from syncd.sync.run import run_sync
    from tests.builders import add_contact, confirmed
    from tests.conftest import TEST_AUDIENCE_ID

    with MailchimpEmulator(list_id=TEST_AUDIENCE_ID) as emu:
        ctx = AppContext.open(make_settings(database_url, mailchimp_api_key=DEFAULT_API_KEY,
                                            mailchimp_base_url=emu.base_url))
        ctx.sync_lists()
        add_contact(ctx, "metrics.watch@example.org", events=confirmed(),
                    lists=["newsletter-nl"])
        with served(create_app(ctx)) as url:
            before = requests.get(url + "/metrics", timeout=5).text
            run_sync(ctx)
            hook = requests.post(f"{url}/webhooks/mailchimp/{TEST_WEBHOOK_SECRET}",
                                 data=fixture_body("unsubscribe.form"), headers=FORM,
                                 timeout=10)
            after = requests.get(url + "/metrics", timeout=5).text
        ctx.close()

    assert hook.status_code == 200
    for name, labels in (("syncd_runs_total", {"kind": "sync", "outcome": "succeeded"}),
                         ("syncd_members_total", {"outcome": "pushed"}),
                         ("syncd_webhook_events_total", {})):
        assert _total(after, name, **labels) == _total(before, name, **labels) + 1, name
    assert _total(after, "syncd_last_success_timestamp_seconds", kind="sync") > 0
