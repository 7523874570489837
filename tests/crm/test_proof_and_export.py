"""`syncd contacts proof` (Art. 7(1)) and `syncd contacts export` (Art. 15/20): the whole
story per purpose with Mailchimp's own record read live (or marked when it is not), and
everything syncd holds on a person in one documented JSON document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailchimp_emulator import MailchimpEmulator
from syncd.clock import utcnow
from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm.erasure import erase_contact
from syncd.crm.proof import PROOF_SCHEMA, proof_for
from syncd.crm.subject import EXPORT_SCHEMA, export_for
from syncd.db import transaction
from syncd.schema import Contact, PushState, WebhookEvent
from tests.builders import add_contact, at, confirmed
from tests.conftest import TEST_AUDIENCE_ID, emulated_settings
from tests.crm.conftest import Cli

ADA = "ada@example.com"
TOKEN_HASH = "sha256:9f2c0e"


def _ada(ctx: AppContext) -> int:
    """Ada: given on a form, confirmed with a token, later withdrawn by mail reply."""
    contact_id = add_contact(ctx, ADA, events=[("newsletter", Action.GIVEN, at(0))],
                             lists=["newsletter-nl"])
    with transaction(ctx.sessions) as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        ledger.append(session, contact, ConsentRecord(
            purpose="newsletter", action=Action.CONFIRMED, occurred_at=at(0.01),
            source="web_form", ip="192.0.2.11", user_agent="Mozilla/5.0 (X11)",
            confirmation_token_hash=TOKEN_HASH), actor="test")
        ledger.append(session, contact, ConsentRecord(
            purpose="newsletter", action=Action.WITHDRAWN, occurred_at=at(30),
            source="email_reply", reason="asked by mail"), actor="test")
    return contact_id


def _webhook_about(ctx: AppContext, email: str) -> None:
    with transaction(ctx.sessions) as session:
        session.add(WebhookEvent(dedupe_key="d" * 64, kind="unsubscribe", list_id="l1",
                                 fired_at=at(30), received_at=at(30),
                                 address_hmac=ctx.keyring.address_hmac(email),
                                 status="applied", attempts=1,
                                 body=f"type=unsubscribe&data[email]={email}"))


def test_proof_tells_each_step_of_the_story_in_order(app_context: AppContext) -> None:
    _ada(app_context)
    doc = proof_for(app_context, ADA, read_esp=False, now=utcnow())
    assert doc is not None
    assert doc["schema"] == PROOF_SCHEMA
    story = doc["purposes"]["newsletter"]
    assert [e["action"] for e in story["events"]] == ["given", "confirmed", "withdrawn"]
    given, confirmed_, withdrawn = story["events"]
    assert (given["form_url"], given["text_version"], given["privacy_notice_version"]) == (
        "https://example.org/signup", "v3", "2026-01")
    assert (confirmed_["ip"], confirmed_["user_agent"], confirmed_["confirmation_token_hash"]
            ) == ("192.0.2.11", "Mozilla/5.0 (X11)", TOKEN_HASH)
    assert (withdrawn["channel"], withdrawn["reason"]) == ("email_reply", "asked by mail")
    assert (story["eligible"], story["standing"]) == (False, "withdrawn")
    assert all(e["chain"]["hash"] for e in story["events"])


def test_proof_reads_mailchimps_record_live(database_url: str,
                                           emulator: MailchimpEmulator) -> None:
    ctx = AppContext.open(emulated_settings(database_url, emulator))
    try:
        ctx.sync_lists()
        add_contact(ctx, ADA, events=confirmed())
        emulator.seed_member(ADA, "subscribed", ip_opt="198.51.100.7",
                             timestamp_opt="2026-03-01T10:00:00+00:00")
        doc = proof_for(ctx, ADA)
    finally:
        ctx.close()
    assert doc is not None
    esp = doc["mailchimp"]
    assert (esp["read"], esp["status"], esp["ip_opt"]) == ("live", "subscribed",
                                                           "198.51.100.7")
    assert esp["timestamp_opt"].startswith("2026-03-01T10:00:00")


def test_proof_marks_mailchimp_unreachable_and_still_answers(database_url: str) -> None:
    from tests.conftest import make_settings

    ctx = AppContext.open(make_settings(
        database_url, mailchimp_api_key="0" * 32 + "-us1",
        mailchimp_base_url="http://127.0.0.1:9", mailchimp_timeout_seconds=1.0))
    try:
        ctx.sync_lists()
        add_contact(ctx, ADA, events=confirmed())
        with transaction(ctx.sessions) as session:
            contact = session.scalars(select(Contact)).one()
            session.add(PushState(contact_id=contact.id, audience_id=TEST_AUDIENCE_ID,
                                  settled_revision=1, esp_status="subscribed",
                                  updated_at=utcnow()))
        doc = proof_for(ctx, ADA)
    finally:
        ctx.close()
    assert doc is not None
    esp = doc["mailchimp"]
    assert esp["read"] == "unreachable"
    assert esp["status"] is None
    assert esp["known_to_syncd"][0]["esp_status"] == "subscribed"
    assert doc["purposes"]["newsletter"]["eligible"] is True


def test_proof_lists_the_webhooks_received_about_the_person_without_bodies(
        app_context: AppContext) -> None:
    _ada(app_context)
    _webhook_about(app_context, ADA)
    doc = proof_for(app_context, ADA, read_esp=False)
    assert doc is not None
    assert [(w["kind"], w["status"]) for w in doc["webhooks"]] == [("unsubscribe", "applied")]
    assert "body" not in doc["webhooks"][0]


def test_proof_cli_reads_as_sentences(app_context: AppContext, cli: Cli) -> None:
    _ada(app_context)
    result = cli("contacts", "proof", ADA, "--offline")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Purpose newsletter: may NOT be mailed" in text
    assert "consent confirmed (double opt-in), via web_form" in text
    assert f"confirmation token hash {TOKEN_HASH}" in text
    assert "consent withdrawn, via email_reply" in text
    assert "Mailchimp NOT read (not_asked)" in text


def test_proof_cli_json_is_the_documented_document(app_context: AppContext, cli: Cli) -> None:
    _ada(app_context)
    result = cli("contacts", "proof", ADA, "--json", "--offline")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"schema", "generated_at", "person", "purposes", "mailchimp",
                        "webhooks"}


def test_proof_of_an_unknown_address_is_not_found(cli: Cli) -> None:
    result = cli("contacts", "proof", "nobody@example.com", "--offline")
    assert result.exit_code == 7
    assert "no contact with this address" in result.output


def _export(ctx: AppContext) -> dict[str, Any]:
    doc = export_for(ctx, ADA)
    assert doc is not None
    return doc


def test_export_holds_everything_syncd_keeps_on_the_person(app_context: AppContext) -> None:
    contact_id = _ada(app_context)
    _webhook_about(app_context, ADA)
    with transaction(app_context.sessions) as session:
        session.add(PushState(contact_id=contact_id, audience_id=TEST_AUDIENCE_ID,
                              settled_revision=2, esp_status="unsubscribed",
                              esp_email=ADA, updated_at=utcnow()))
    doc = _export(app_context)
    assert doc["schema"] == EXPORT_SCHEMA
    assert doc["contact"]["email_key"] == ADA
    assert [lst["name"] for lst in doc["lists"]] == ["newsletter-nl"]
    assert len(doc["consent_events"]) == 3
    assert doc["push_state"][0]["esp_status"] == "unsubscribed"
    assert {a["action"] for a in doc["audit_log"]} >= {"contact_created", "consent_given"}
    assert doc["webhooks"][0]["body"].endswith(ADA)


def test_export_after_erasure_still_shows_the_suppression_that_stays(
        app_context: AppContext) -> None:
    _ada(app_context)
    erase_contact(app_context, ADA, actor="test")
    doc = _export(app_context)
    assert doc["contact"] is None
    assert doc["consent_events"] == []
    assert [(s["purpose"], s["reason"]) for s in doc["suppressions"]] == [("*", "erasure")]


def test_export_of_an_address_syncd_never_saw_is_not_found(cli: Cli) -> None:
    result = cli("contacts", "export", "nobody@example.com")
    assert result.exit_code == 7


def test_export_cli_writes_a_private_file(app_context: AppContext, cli: Cli,
                                          tmp_path: Path) -> None:
    _ada(app_context)
    target = tmp_path / "ada.json"
    result = cli("contacts", "export", ADA, "--output", str(target))
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text(encoding="utf-8"))["address"] == ADA
    assert target.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("bad", ["not-an-address", ""])
def test_export_cli_refuses_a_bad_address(cli: Cli, bad: str) -> None:
    result = cli("contacts", "export", bad)
    assert result.exit_code == 3
