"""`syncd demo` end to end, as a subprocess: exit 0 only when every check passed, one
JSON document, nothing left behind, the user's own settings never used."""

from __future__ import annotations

import re
from pathlib import Path

from syncd.demo.report import STEP_KEYS
from tests.demo.conftest import DemoRun

WEBHOOK_PATH = re.compile(r"/webhooks/mailchimp/([A-Za-z0-9_-]{16,})")


def test_demo_json_exits_zero_with_every_step_and_check_passed(demo_json_run: DemoRun) -> None:
    assert demo_json_run.returncode == 0, demo_json_run.stderr
    document = demo_json_run.document
    assert document["ok"] is True
    assert [step["step"] for step in document["steps"]] == list(STEP_KEYS)
    checks = [check for step in document["steps"] for check in step["checks"]]
    assert len(checks) >= 30
    assert all(check["passed"] is True for check in checks), [
        c["name"] for c in checks if not c["passed"]]
    assert document["failed_checks"] == []


def test_demo_json_is_the_only_output(demo_json_run: DemoRun) -> None:
    assert demo_json_run.stdout.lstrip().startswith("{")
    assert demo_json_run.stdout.rstrip().endswith("}")
    assert demo_json_run.stderr == ""


def test_demo_never_prints_the_webhook_secret(demo_json_run: DemoRun) -> None:
    output = demo_json_run.stdout + demo_json_run.stderr
    assert "/webhooks/mailchimp/" in output
    assert WEBHOOK_PATH.search(output) is None


def test_demo_ignores_the_users_syncd_settings(demo_json_run: DemoRun) -> None:
    document = demo_json_run.document
    assert not demo_json_run.production_db.exists()
    assert "SYNCD_DATABASE_URL" in document["ignored_environment"]
    # The variable would push the unconfirmed sign-up as pending; the demo did not.
    sync = next(s for s in document["steps"] if s["step"] == "sync")
    assert sync["facts"]["run"]["added"] == 2


def test_demo_removes_its_temporary_directory(demo_json_run: DemoRun) -> None:
    document = demo_json_run.document
    assert document["kept"] is False
    assert not Path(document["directory"]).exists()


def test_demo_measures_the_purge(demo_json_run: DemoRun) -> None:
    step = next(s for s in demo_json_run.document["steps"] if s["step"] == "unsubscribe")
    assert step["facts"]["http_status"] == [200]
    assert step["facts"]["ms_send_to_2xx"] > 0
    assert step["facts"]["ms_server_purge"] is not None
