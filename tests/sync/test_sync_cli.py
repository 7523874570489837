"""`syncd sync` as the operator runs it: exit codes, --json, --dry-run, --force, and crash
safety (I8) with the SYNCD_FAILPOINT hook killing the real process mid-run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from mailchimp_emulator import DEFAULT_API_KEY, MailchimpEmulator
from mailchimp_emulator.faults import RequestInfo
from syncd.cli import _register_all, app
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.runner_lock import single_runner
from syncd.schema import Contact, PushState
from syncd.sync.run import run_sync
from tests.builders import add_contact, at, confirmed
from tests.conftest import TEST_AUDIENCE_ID, TEST_LISTS, TEST_PSEUDONYM_KEY

ROOT = Path(__file__).resolve().parents[2]
_register_all()


def write_config(path: Path, database_url: str, emu: MailchimpEmulator,
                 **mailchimp: Any) -> Path:
    lines = [f'database_url = "{database_url}"', f'pseudonym_key = "{TEST_PSEUDONYM_KEY}"',
             'log_format = "json"', "", "[mailchimp]", f'api_key = "{DEFAULT_API_KEY}"',
             f'audience_id = "{TEST_AUDIENCE_ID}"', f'base_url = "{emu.base_url}"',
             "retry_max_wait_seconds = 0.02", "batch_size = 5"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in mailchimp.items()]
    for name, cfg in TEST_LISTS.items():
        lines += ["", f'[lists."{name}"]', f'purpose = "{cfg.purpose}"',
                  f"marketing = {'true' if cfg.marketing else 'false'}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path, database_url: str, emulator: MailchimpEmulator,
           app_context: AppContext) -> Path:
    return write_config(tmp_path / "syncd.toml", database_url, emulator)


def invoke(config: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--config", str(config), "sync", *args])


def test_cli_sync_exit_ok_and_json_report(config: Path, app_context: AppContext,
                                          emulator: MailchimpEmulator) -> None:
    add_contact(app_context, "ada@example.org", events=confirmed())

    result = invoke(config, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 1


def test_cli_exit_partial_when_a_contact_is_parked(config: Path, app_context: AppContext,
                                                   emulator: MailchimpEmulator) -> None:
    emulator.configure(refused_addresses=["fake@example.org"])
    add_contact(app_context, "fake@example.org", events=confirmed())

    assert invoke(config).exit_code == 6


def test_cli_exit_failed_with_a_clear_message_on_a_bad_key(
        tmp_path: Path, database_url: str, emulator: MailchimpEmulator,
        app_context: AppContext) -> None:
    config = write_config(tmp_path / "bad.toml", database_url, emulator)
    config.write_text(config.read_text().replace(DEFAULT_API_KEY, "0" * 32 + "-us1"))

    result = invoke(config)

    assert result.exit_code == 1
    assert "SYNCD_MAILCHIMP_API_KEY" in result.stderr
    assert "0" * 32 not in result.stderr


def test_cli_exit_busy_when_another_run_holds_the_lock(
        config: Path, app_context: AppContext) -> None:
    with single_runner(app_context.engine, f"sync:{TEST_AUDIENCE_ID}"):
        result = invoke(config)

    assert result.exit_code == 5


def test_cli_refuses_a_mass_unsubscribe_and_force_runs_it(
        config: Path, app_context: AppContext, emulator: MailchimpEmulator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_SYNC_UNSUBSCRIBE_FLOOR", "0")  # the share alone decides
    for n in range(4):
        add_contact(app_context, f"p{n}@example.org", events=confirmed())
    run_sync(app_context)
    for n in range(2):
        add_contact(app_context, f"p{n}@example.org",
                    events=[("newsletter", Action.WITHDRAWN, at(5))])

    refused = invoke(config)
    forced = invoke(config, "--force")

    assert refused.exit_code == 4
    assert "2 of the 4 members" in refused.stderr
    assert forced.exit_code == 0


def test_cli_dry_run_shows_examples_and_writes_nothing(
        config: Path, app_context: AppContext, emulator: MailchimpEmulator) -> None:
    add_contact(app_context, "ada@example.org", events=confirmed())

    result = invoke(config, "--dry-run")

    assert result.exit_code == 0
    assert "ada@example.org" in result.stdout
    assert emulator.stats.write_calls == 0
    with app_context.sessions() as session:
        assert session.scalars(select(PushState)).all() == []


# -- crash safety (I8) --------------------------------------------------------------


def _withdraw_and_confirm_again(ctx: AppContext, email: str) -> None:
    add_contact(ctx, email, events=[("newsletter", Action.WITHDRAWN, at(5))])
    run_sync(ctx, force=True)  # unsubscribed at the ESP (1 of 1: past the safety limit)
    add_contact(ctx, email, events=[("newsletter", Action.GIVEN, at(6)),
                                    ("newsletter", Action.CONFIRMED, at(6.1))])


def _crash_scenario(ctx: AppContext) -> None:
    # A re-consent of a member syncd unsubscribed: goes as `pending` with a PUT.
    add_contact(ctx, "again@example.org", events=confirmed())
    run_sync(ctx)
    _withdraw_and_confirm_again(ctx, "again@example.org")
    for n in range(12):
        add_contact(ctx, f"p{n:02d}@example.org", events=confirmed(), lists=["newsletter-nl"])
    add_contact(ctx, "back@example.org",
                events=[*confirmed(), ("newsletter", Action.WITHDRAWN, at(2)),
                        ("newsletter", Action.GIVEN, at(3)),
                        ("newsletter", Action.CONFIRMED, at(3.1))])


def _end_state(ctx: AppContext, emu: MailchimpEmulator) -> tuple[object, ...]:
    members = sorted((m["email_address"], m["status"], tuple(t["name"] for t in m["tags"]),
                      m["timestamp_opt"]) for m in emu.members())
    with ctx.sessions() as session:
        rows = session.execute(select(
            Contact.email_key, Contact.revision, PushState.settled_revision,
            PushState.fingerprint, PushState.esp_status, PushState.attempt_fingerprint,
        ).join(PushState, PushState.contact_id == Contact.id).order_by(Contact.email_key)).all()
    return tuple(members), tuple(tuple(r) for r in rows)


@pytest.mark.parametrize("failpoint", ["before_push", "after_push_before_checkpoint",
                                       "after_checkpoint"])
def test_crash_then_clean_rerun_converges_without_a_second_confirmation_mail(
        failpoint: str, config: Path, app_context: AppContext,
        emulator: MailchimpEmulator) -> None:
    _crash_scenario(app_context)
    pushes: Counter[str] = Counter()

    def count(request: RequestInfo) -> None:
        for item in (request.body or {}).get("members", []):
            pushes[item["email_address"]] += 1

    emulator.set_hook(count, match=r"^POST /3\.0/lists/[^/]+$")
    env = {**os.environ, "SYNCD_FAILPOINT": failpoint, "PYTHONPATH": str(ROOT)}
    crashed = subprocess.run([sys.executable, "-m", "syncd", "--config", str(config), "sync"],
                             env=env, capture_output=True, text=True, timeout=60, check=False)
    # A restart comes seconds later: requests the killed process had in flight have been
    # answered by then (a write still in flight at Mailchimp cannot be known, see docs).
    deadline = time.monotonic() + 5
    while emulator.stats.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    rerun = run_sync(app_context)
    again = run_sync(app_context)
    crashed_state = _end_state(app_context, emulator)
    mails = [emulator.confirmation_mails_sent(e) for e in ("back@example.org",
                                                           "again@example.org")]
    emulator.reset()
    with app_context.engine.begin() as conn:
        conn.execute(PushState.__table__.delete())
    run_sync(app_context)

    assert crashed.returncode == 137, crashed.stderr
    assert crashed_state == _end_state(app_context, emulator)  # the crash-free end state
    assert rerun.failed == 0
    assert again.write_calls == 0
    assert max(pushes.values()) <= 2  # at most one extra push per contact
    assert mails == [1, 1]  # never a second confirmation mail
