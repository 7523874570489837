"""Messages name the setting the operator has to change: with [[targets]] the target's
own key (its safety limit, its audience id, its purposes as the default purpose), with
the single-audience settings the old `sync_*` names as before. Both databases where a
database is involved, the real client over HTTP, the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mailchimp_emulator import MailchimpEmulator
from syncd.cli import _register_all, app
from syncd.config import Settings
from syncd.config.targets import TargetSettings
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.esp.mailchimp import mailchimp_client
from syncd.esp.mailchimp_responses import Problem, classify_problem
from syncd.sync.audience_remedy import run_remedy
from syncd.sync.run import run_sync
from tests.builders import add_contact, at, confirmed
from tests.conftest import TEST_AUDIENCE_ID
from tests.sync.conftest import sync_settings
from tests.sync.test_sync_cli import write_config
from tests.targets.conftest import NEWSLETTER, OFFERS, OFFERS_AUDIENCE, two_target_settings

_register_all()
ADA = "ada@example.org"
STRICT = NEWSLETTER.model_copy(update={"max_unsubscribe_share": 0.0, "unsubscribe_floor": 0})


def held_error(settings: Settings) -> str:
    """The error of a sync that holds one unsubscribe (limit 0)."""
    ctx = AppContext.open(settings)
    ctx.sync_lists()
    try:
        add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl"])
        run_sync(ctx, target=ctx.settings.target())
        add_contact(ctx, ADA, events=[("newsletter", Action.WITHDRAWN, at(1))])
        report = run_sync(ctx, target=ctx.settings.target())
    finally:
        ctx.close()
    assert report.held_unsubscribes == 1
    return report.error or ""


def test_held_unsubscribes_name_the_targets_own_safety_settings(
        database_url: str, two_audiences: MailchimpEmulator) -> None:
    error = held_error(two_target_settings(database_url, two_audiences, STRICT))
    assert 'unsubscribe_floor of [[targets]] "newsletter" = 0' in error
    assert 'max_unsubscribe_share of [[targets]] "newsletter" = 0%' in error
    assert "sync_" not in error


def test_held_unsubscribes_with_the_single_audience_settings_name_the_sync_settings(
        database_url: str, emulator: MailchimpEmulator) -> None:
    error = held_error(sync_settings(database_url, emulator, sync_unsubscribe_floor=0,
                                     sync_max_unsubscribe_share=0.0))
    assert "sync_unsubscribe_floor = 0" in error
    assert "sync_max_unsubscribe_share = 0%" in error


def remedy_error(settings: Settings, target: TargetSettings, emu: MailchimpEmulator) -> str:
    emu.seed_member("stranger@example.org")  # subscribed, no CRM contact
    ctx = AppContext.open(settings)
    esp = mailchimp_client(settings, target.audience_id)
    try:
        report = run_remedy(ctx, esp, klass="subscribed_without_contact",
                            action="unsubscribe", dry_run=True, target=target)
    finally:
        esp.close()
        ctx.close()
    assert report.outcome == "refused"
    return report.error or ""


def test_a_refused_remedy_names_the_targets_own_safety_settings(
        database_url: str, two_audiences: MailchimpEmulator) -> None:
    error = remedy_error(two_target_settings(database_url, two_audiences, STRICT, OFFERS),
                         STRICT, two_audiences)
    assert ('unsubscribe_floor of [[targets]] "newsletter" and max_unsubscribe_share of '
            '[[targets]] "newsletter"') in error


def test_a_refused_remedy_with_the_single_audience_settings_names_the_sync_settings(
        database_url: str, emulator: MailchimpEmulator) -> None:
    settings = sync_settings(database_url, emulator, sync_unsubscribe_floor=0,
                             sync_max_unsubscribe_share=0.0)
    error = remedy_error(settings, settings.target(), emulator)
    assert "sync_unsubscribe_floor and sync_max_unsubscribe_share" in error


def test_an_unknown_audience_names_the_targets_audience_id_and_the_single_setting() -> None:
    error = str(classify_problem(Problem(404, "Resource Not Found", ""), what="read audience"))
    assert "the target's audience_id ([[targets]])" in error
    assert "SYNCD_MAILCHIMP_AUDIENCE_ID" in error


@pytest.fixture
def offers_first(tmp_path: Path, database_url: str, two_audiences: MailchimpEmulator,
                 targets_ctx: AppContext) -> Path:
    """A settings file whose first target sends offers (by consent), then the newsletter."""
    path = write_config(tmp_path / "syncd.toml", database_url, two_audiences)
    text = path.read_text().replace(f'audience_id = "{TEST_AUDIENCE_ID}"\n', "")
    for name, audience, purpose in (("offers", OFFERS_AUDIENCE, "offers"),
                                    ("newsletter", TEST_AUDIENCE_ID, "newsletter")):
        text += (f'\n[[targets]]\nname = "{name}"\naudience_id = "{audience}"\n'
                 f'purposes = ["{purpose}"]\n')
    path.write_text(text)
    add_contact(targets_ctx, ADA, events=confirmed("offers"), lists=["offers"])
    return path


def contacts_list(config: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--config", str(config), "contacts", "list", *args])


def test_contacts_list_judges_the_first_targets_purpose_by_default(offers_first: Path) -> None:
    result = contacts_list(offers_first)
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\t")[2] == "eligible"
    assert contacts_list(offers_first, "--purpose", "newsletter").stdout.split("\t")[2] == (
        "not-eligible")


def test_target_settings_are_named_by_their_table_or_their_single_audience_setting() -> None:
    single = Settings(mailchimp_audience_id="aud1")
    several = Settings(targets=[OFFERS, NEWSLETTER])
    assert single.target_setting(single.target(), "unsubscribe_floor") == (
        "sync_unsubscribe_floor")
    assert several.target_setting(OFFERS, "unsubscribe_floor") == (
        'unsubscribe_floor of [[targets]] "offers"')
    assert (single.default_purpose, several.default_purpose) == ("newsletter", "offers")
