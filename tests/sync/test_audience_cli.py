"""`syncd audience pull | audit | remedy` as the operator runs them: classes worst first,
addresses only in the CSV/JSON asked for, a distinct exit code for cron and CI (8), and
remedies with a dry run, under the safety limit, that write no withdrawal (I13)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from mailchimp_emulator import MailchimpEmulator
from syncd.cli import _register_all, app
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm.erasure import erase_contact
from syncd.db import transaction
from syncd.schema import ConsentEvent, PushState
from tests.builders import add_contact, at, confirmed
from tests.sync.test_sync_cli import write_config

_register_all()


@pytest.fixture
def config(tmp_path: Path, database_url: str, emulator: MailchimpEmulator,
           app_context: AppContext) -> Path:
    return write_config(tmp_path / "syncd.toml", database_url, emulator)


def audience(config: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--config", str(config), "audience", *args])


def _one_of_each_class(ctx: AppContext, emu: MailchimpEmulator) -> None:
    emu.seed_member("left@example.org", "subscribed")  # withdrawn in the CRM
    add_contact(ctx, "left@example.org", events=[*confirmed(), ("newsletter", Action.WITHDRAWN,
                                                                at(2))])
    emu.seed_member("erased@example.org", "subscribed")  # erased here, still mailed there
    add_contact(ctx, "erased@example.org", events=confirmed())
    erase_contact(ctx, "erased@example.org", actor="test")
    emu.seed_member("nolog@example.org", "subscribed")  # a contact with no consent at all
    add_contact(ctx, "nolog@example.org")
    emu.seed_member("stranger@example.org", "subscribed")  # no contact
    emu.seed_member("gone@example.org", "unsubscribed")  # the ledger does not know
    add_contact(ctx, "gone@example.org", events=confirmed())
    emu.seed_member("fine@example.org", "subscribed")
    add_contact(ctx, "fine@example.org", events=confirmed())


def test_audit_counts_every_class_worst_first_and_exits_8(
        config: Path, app_context: AppContext, emulator: MailchimpEmulator,
        tmp_path: Path) -> None:
    _one_of_each_class(app_context, emulator)
    path = tmp_path / "audit.csv"

    result = audience(config, "audit", "--json", "--csv", str(path))

    assert result.exit_code == 8, result.output
    doc = json.loads(result.stdout)
    assert list(doc["counts"].items()) == [
        ("mailed_against_ledger", 2), ("mailed_without_consent", 1),
        ("subscribed_without_contact", 1), ("gone_not_in_ledger", 1), ("consistent", 1)]
    assert {f["email_address"]: f["reason"] for f in doc["findings"]
            if f["class"] == "mailed_against_ledger"} == {
        "left@example.org": "withdrawn", "erased@example.org": "erased"}
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    assert {r["class"] for r in rows if r["email_address"] == "fine@example.org"} == {
        "consistent"}


def test_audit_of_a_consistent_audience_exits_0_and_prints_no_address(
        config: Path, app_context: AppContext, emulator: MailchimpEmulator) -> None:
    emulator.seed_member("fine@example.org", "subscribed")
    add_contact(app_context, "fine@example.org", events=confirmed())

    result = audience(config, "audit")

    assert result.exit_code == 0, result.output
    assert "consistent" in result.stdout
    assert "@" not in result.output


def test_audit_writes_nothing(config: Path, app_context: AppContext,
                              emulator: MailchimpEmulator) -> None:
    _one_of_each_class(app_context, emulator)
    emulator.reset_stats()

    audience(config, "audit")

    with transaction(app_context.sessions) as session:
        assert session.scalar(select(func.count()).select_from(PushState)) == 0
    assert emulator.stats.write_calls == 0


def test_pull_reports_counts_and_records_the_matching_members(
        config: Path, app_context: AppContext, emulator: MailchimpEmulator) -> None:
    _one_of_each_class(app_context, emulator)

    result = audience(config, "pull", "--json")

    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["seen"], doc["matched"], doc["unmatched"]) == (6, 4, 2)
    with transaction(app_context.sessions) as session:
        assert session.scalar(select(func.count()).select_from(PushState)) == 4


def test_remedy_dry_run_names_who_and_changes_nothing(
        config: Path, app_context: AppContext, emulator: MailchimpEmulator) -> None:
    _one_of_each_class(app_context, emulator)

    result = audience(config, "remedy", "--class", "mailed_without_consent",
                      "--action", "unsubscribe", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "nolog@example.org" in result.stdout
    assert emulator.member("nolog@example.org")["status"] == "subscribed"  # type: ignore[index]


def test_remedy_unsubscribes_without_writing_a_withdrawal_the_person_never_made(
        config: Path, app_context: AppContext, emulator: MailchimpEmulator) -> None:
    _one_of_each_class(app_context, emulator)

    result = audience(config, "remedy", "--class", "mailed_without_consent",
                      "--action", "unsubscribe")

    assert result.exit_code == 0, result.output
    assert emulator.member("nolog@example.org")["status"] == "unsubscribed"  # type: ignore[index]
    assert emulator.member("stranger@example.org")["status"] == "subscribed"  # type: ignore[index]
    with transaction(app_context.sessions) as session:
        withdrawals = session.scalar(select(func.count()).select_from(ConsentEvent).where(
            ConsentEvent.action == "withdrawn"))
    assert withdrawals == 1  # left@ only: the CRM's own


def test_remedy_above_the_safety_limit_is_refused_without_force(
        config: Path, app_context: AppContext, emulator: MailchimpEmulator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_SYNC_UNSUBSCRIBE_FLOOR", "0")
    for n in range(5):
        emulator.seed_member(f"s{n}@example.org", "subscribed")

    refused = audience(config, "remedy", "--class", "subscribed_without_contact",
                       "--action", "archive")
    forced = audience(config, "remedy", "--class", "subscribed_without_contact",
                      "--action", "archive", "--force")

    assert refused.exit_code == 4, refused.output
    assert forced.exit_code == 0, forced.output
    assert emulator.audience.member_count("archived") == 5


def test_audit_flags_a_consent_older_than_the_repermission_age_by_count_only(
        config: Path, app_context: AppContext, emulator: MailchimpEmulator) -> None:
    emulator.seed_member("fine@example.org", "subscribed")
    add_contact(app_context, "fine@example.org", events=confirmed(days=-800))  # > 730 days

    result = audience(config, "audit")

    assert result.exit_code == 0, result.output
    assert "due for re-permission: 1 (newsletter 1)" in result.stdout
    assert "@" not in result.output


def test_audit_leaves_its_counts_for_the_status_page_without_addresses(
        config: Path, app_context: AppContext, emulator: MailchimpEmulator) -> None:
    from syncd.service.status_data import collect

    _one_of_each_class(app_context, emulator)

    audience(config, "audit")

    last = collect(app_context)["audit"]
    assert (last["outcome"], last["members"], last["classes"]["mailed_against_ledger"]) == (
        "findings", 6, 2)
    assert "@" not in json.dumps(last)


def test_audit_tells_a_member_gone_without_any_trace_here_from_one_an_erasure_keeps_out(
        config: Path, app_context: AppContext, emulator: MailchimpEmulator,
        tmp_path: Path) -> None:
    # Unsubscribed at Mailchimp with no contact: gone, but nothing here would keep the
    # address out if the CRM brought it back; an erased person's suppression does (I6).
    emulator.seed_member("stranger-left@example.org", "unsubscribed")
    emulator.seed_member("erased-left@example.org", "unsubscribed")
    add_contact(app_context, "erased-left@example.org", events=confirmed())
    erase_contact(app_context, "erased-left@example.org", actor="test")

    path = tmp_path / "audit.csv"

    result = audience(config, "audit", "--csv", str(path))

    assert result.exit_code == 0, result.output
    with path.open(encoding="utf-8") as handle:
        found = {r["email_address"]: (r["class"], r["reason"]) for r in csv.DictReader(handle)}
    assert found == {
        "stranger-left@example.org": ("gone_not_in_ledger", "unsubscribed, no suppression"),
        "erased-left@example.org": ("consistent", "unsubscribed")}


def test_remedy_of_a_class_without_a_remedy_is_refused_naming_the_classes_that_have_one(
        config: Path, app_context: AppContext, emulator: MailchimpEmulator) -> None:
    _one_of_each_class(app_context, emulator)

    result = audience(config, "remedy", "--class", "mailed_against_ledger",
                      "--action", "unsubscribe")

    assert result.exit_code == 2, result.output
    assert "no remedy for class 'mailed_against_ledger'" in result.output
    assert "mailed_without_consent, subscribed_without_contact" in result.output
    assert emulator.member("left@example.org")["status"] == "subscribed"  # type: ignore[index]


def test_remedy_with_an_unknown_action_is_refused_naming_the_actions(
        config: Path, app_context: AppContext, emulator: MailchimpEmulator) -> None:
    _one_of_each_class(app_context, emulator)

    result = audience(config, "remedy", "--class", "mailed_without_consent",
                      "--action", "delete")

    assert result.exit_code == 2, result.output
    assert "unknown remedy 'delete'; one of: unsubscribe, archive" in result.output
    assert emulator.member("nolog@example.org")["status"] == "subscribed"  # type: ignore[index]
