"""`--target NAME` on the commands that act on one audience (`audience pull|audit|remedy`,
`contacts proof`, `webhooks register|check`): with several targets a missing or unknown
name is one error line listing the configured names (exit 2); the name picks that
target's audience and its basis; with one target it is the default."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.crm.importer import import_file
from tests.builders import add_contact, confirmed
from tests.cli.conftest import Invoke
from tests.conftest import TEST_AUDIENCE_ID, TEST_WEBHOOK_SECRET
from tests.sync.test_sync_cli import write_config
from tests.targets.conftest import OFFERS_AUDIENCE, targets_ctx, two_audiences

__all__ = ["targets_ctx", "two_audiences"]  # the two-audience fixtures, shared

NEWS, CUSTOMER, STRANGER = "news@example.org", "customer@example.org", "old@example.org"
URL = f"https://syncd.example.org/webhooks/mailchimp/{TEST_WEBHOOK_SECRET}"
PER_AUDIENCE = [
    ("audience", "pull"),
    ("audience", "audit"),
    ("audience", "remedy", "--class", "mailed_without_consent", "--action", "unsubscribe",
     "--dry-run"),
    ("contacts", "proof", NEWS),
    ("webhooks", "register", "--url", URL),
    ("webhooks", "check"),
]


def _targets(text: str, *targets: tuple[str, str, str]) -> str:
    text = text.replace(f'audience_id = "{TEST_AUDIENCE_ID}"\n', "")
    text = text.replace("[mailchimp]\n", f'[webhook]\nsecrets = ["{TEST_WEBHOOK_SECRET}"]\n\n'
                                         "[mailchimp]\n")
    for name, audience, basis in targets:
        purpose = "newsletter" if basis == "consent" else "offers"
        text += (f'\n[[targets]]\nname = "{name}"\naudience_id = "{audience}"\n'
                 f'purposes = ["{purpose}"]\nbasis = "{basis}"\n')
    return text


@pytest.fixture
def config(tmp_path: Path, database_url: str, two_audiences: MailchimpEmulator,
           targets_ctx: AppContext) -> Path:
    """Newsletter by consent in the default audience, offers by soft opt-in in another;
    a confirmed subscriber, a paying customer; both audiences hold them and a stranger."""
    path = write_config(tmp_path / "syncd.toml", database_url, two_audiences)
    path.write_text(_targets(path.read_text(), ("newsletter", TEST_AUDIENCE_ID, "consent"),
                             ("offers", OFFERS_AUDIENCE, "soft_opt_in")))
    add_contact(targets_ctx, NEWS, events=confirmed("newsletter"))
    line = tmp_path / "customer.jsonl"
    today = datetime.now(UTC).date().isoformat()
    line.write_text(json.dumps({"email": CUSTOMER, "purchases": [
        {"date": today, "category": "coffee", "paid": True}]}) + "\n")
    assert import_file(targets_ctx, line).applied
    for audience in (TEST_AUDIENCE_ID, OFFERS_AUDIENCE):
        for email in (NEWS, CUSTOMER, STRANGER):
            two_audiences.seed_member(email, "subscribed", list_id=audience)
    return path


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("command", PER_AUDIENCE, ids=" ".join)
def test_without_target_several_targets_are_one_error_line_naming_them(
        syncd: Invoke, config: Path, command: tuple[str, ...]) -> None:
    result = syncd("--config", str(config), *command)

    assert result.exit_code == 2, result.output
    assert _errors(result.stderr) == ["error: several targets are configured (newsletter, "
                                      "offers); name one with --target"]


@pytest.mark.parametrize("command", PER_AUDIENCE, ids=" ".join)
def test_an_unknown_target_is_one_error_line_listing_the_configured_names(
        syncd: Invoke, config: Path, command: tuple[str, ...]) -> None:
    result = syncd("--config", str(config), *command, "--target", "promo")

    assert result.exit_code == 2, result.output
    assert _errors(result.stderr) == ["error: no target is called 'promo'; configured: "
                                      "newsletter, offers"]


def _audit(syncd: Invoke, config: Path, target: str) -> dict[str, dict[str, str]]:
    result = syncd("--config", str(config), "audience", "audit", "--json", "--target", target)
    assert result.exit_code == 8, result.output
    document = json.loads(result.stdout)
    return {f["email_address"]: f for f in document["findings"]} | {
        "": {"audience_id": document["audience_id"]}}


def test_audit_of_the_newsletter_target_judges_by_the_newsletter_consent(
        syncd: Invoke, config: Path) -> None:
    found = _audit(syncd, config, "newsletter")

    assert found[""]["audience_id"] == TEST_AUDIENCE_ID
    assert NEWS not in found  # consistent: confirmed newsletter consent
    assert found[CUSTOMER]["class"] == "mailed_without_consent"  # a purchase is no consent
    assert found[STRANGER]["class"] == "subscribed_without_contact"


def test_audit_of_the_offers_target_judges_by_the_soft_opt_in_basis(
        syncd: Invoke, config: Path) -> None:
    found = _audit(syncd, config, "offers")

    assert found[""]["audience_id"] == OFFERS_AUDIENCE
    assert CUSTOMER not in found  # consistent: a paid purchase in the period
    assert found[NEWS]["class"] == "mailed_without_consent"  # newsletter consent only
    assert found[NEWS]["reason"] == "not_customer"


def test_remedy_acts_in_the_named_targets_audience_only(
        syncd: Invoke, config: Path, two_audiences: MailchimpEmulator) -> None:
    result = syncd("--config", str(config), "audience", "remedy", "--target", "offers",
                   "--class", "mailed_without_consent", "--action", "unsubscribe", "--force")

    assert result.exit_code == 0, result.output
    assert two_audiences.member(NEWS, list_id=OFFERS_AUDIENCE)["status"] == "unsubscribed"
    assert two_audiences.member(NEWS)["status"] == "subscribed"
    assert two_audiences.member(CUSTOMER, list_id=OFFERS_AUDIENCE)["status"] == "subscribed"


def test_webhooks_register_and_check_act_on_the_named_targets_audience(
        syncd: Invoke, config: Path, two_audiences: MailchimpEmulator) -> None:
    registered = syncd("--config", str(config), "webhooks", "register", "--url", URL,
                       "--target", "offers")
    offers = syncd("--config", str(config), "webhooks", "check", "--target", "offers")
    newsletter = syncd("--config", str(config), "webhooks", "check", "--target", "newsletter")

    assert registered.exit_code == 0, registered.output
    assert offers.exit_code == 0, offers.output
    assert "webhook configuration OK" in offers.stdout
    assert newsletter.exit_code == 7, newsletter.output


def test_contacts_proof_reads_mailchimp_in_the_named_targets_audience(
        syncd: Invoke, config: Path) -> None:
    result = syncd("--config", str(config), "contacts", "proof", CUSTOMER, "--json",
                   "--target", "offers")

    assert result.exit_code == 0, result.output
    mailchimp = json.loads(result.stdout)["mailchimp"]
    assert mailchimp["audience_id"] == OFFERS_AUDIENCE
    assert mailchimp["status"] == "subscribed"


def test_contacts_proof_offline_needs_no_target(syncd: Invoke, config: Path) -> None:
    result = syncd("--config", str(config), "contacts", "proof", NEWS, "--offline")

    assert result.exit_code == 0, result.output


def test_with_one_target_it_is_the_default(
        syncd: Invoke, tmp_path: Path, database_url: str, two_audiences: MailchimpEmulator,
        targets_ctx: AppContext) -> None:
    path = write_config(tmp_path / "one.toml", database_url, two_audiences)
    path.write_text(_targets(path.read_text(), ("offers", OFFERS_AUDIENCE, "soft_opt_in")))
    two_audiences.seed_member(STRANGER, "subscribed", list_id=OFFERS_AUDIENCE)

    result = syncd("--config", str(path), "audience", "audit", "--json")

    assert result.exit_code == 8, result.output
    assert json.loads(result.stdout)["audience_id"] == OFFERS_AUDIENCE
