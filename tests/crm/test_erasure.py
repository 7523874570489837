"""Erasure (rule 8): the data goes, only a keyed-hash suppression and address-free audit
entries stay, and an erased, re-imported address is not eligible (I10)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text

from mailchimp_emulator import MailchimpEmulator
from syncd.addresses import subscriber_hash
from syncd.clock import utcnow
from syncd.consent.facts import decide_for
from syncd.consent.policy import Standing
from syncd.context import AppContext
from syncd.crm import store
from syncd.crm.erasure import erase_contact
from syncd.crm.importer import import_file
from syncd.db import transaction
from syncd.schema import AuditEntry, PushState, Suppression, WebhookEvent
from tests.builders import add_contact, confirmed
from tests.crm.conftest import Cli, contact_line, counts, signed_up, write_jsonl

ADA = "Ada@Example.com"


def _ada_with_everything(ctx: AppContext) -> int:
    contact_id = add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl", "events"],
                             first_name="Ada")
    now = utcnow()
    with transaction(ctx.sessions) as session:
        session.add(PushState(contact_id=contact_id, audience_id="f1243a3b12",
                              settled_revision=3, esp_status="subscribed",
                              esp_email="ada@example.com", updated_at=now))
        session.add(WebhookEvent(dedupe_key="d1", kind="unsubscribe", received_at=now,
                                 address_hmac=ctx.keyring.address_hmac("ada@example.com"),
                                 status="applied", body="data[email]=ada%40example.com"))
    return contact_id


def _all_text(ctx: AppContext) -> str:
    """Every row of every table, as text: where an address could hide."""
    dump = []
    with ctx.engine.connect() as conn:
        for table in ("contacts", "consent_events", "list_memberships", "audit_log",
                      "suppressions", "push_state", "webhook_events"):
            dump += [str(tuple(row)) for row in conn.execute(text(f"select * from {table}"))]
    return "\n".join(dump).lower()


def test_erasure_deletes_the_contact_and_everything_linked(app_context: AppContext) -> None:
    _ada_with_everything(app_context)

    result = erase_contact(app_context, ADA, actor="test")

    assert result.found
    assert result.consent_events_deleted == 2
    found = counts(app_context)
    assert (found["contacts"], found["consent_events"], found["list_memberships"]) == (0, 0, 0)
    with transaction(app_context.sessions) as session:
        assert session.scalars(select(PushState)).all() == []


def test_erasure_keeps_only_a_keyed_hash_suppression_for_every_purpose(
        app_context: AppContext) -> None:
    _ada_with_everything(app_context)
    erase_contact(app_context, ADA, actor="test")
    with transaction(app_context.sessions) as session:
        rows = [(s.address_hmac, s.purpose, s.reason) for s in session.scalars(select(Suppression))]
    assert rows == [(app_context.keyring.address_hmac("ada@example.com"), "*", "erasure")]


def test_after_erasure_no_table_holds_the_address(app_context: AppContext) -> None:
    _ada_with_everything(app_context)
    erase_contact(app_context, ADA, actor="test")
    dump = _all_text(app_context)
    assert "ada@example.com" not in dump
    assert "ada%40example.com" not in dump


def test_erasure_audit_entries_name_no_contact(app_context: AppContext) -> None:
    _ada_with_everything(app_context)
    erase_contact(app_context, ADA, actor="test")
    with transaction(app_context.sessions) as session:
        entries = list(session.scalars(select(AuditEntry)))
    assert {e.action for e in entries} == {"suppressed", "contact_erased"}
    assert all(e.contact_id is None for e in entries)


def test_erasure_keeps_the_webhook_row_so_a_replay_stays_a_duplicate(
        app_context: AppContext) -> None:
    _ada_with_everything(app_context)
    erase_contact(app_context, ADA, actor="test")
    with transaction(app_context.sessions) as session:
        event = session.scalars(select(WebhookEvent)).one()
    assert (event.dedupe_key, event.body) == ("d1", None)


def test_erased_and_reimported_address_is_not_eligible(app_context: AppContext,
                                                        tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "crm.jsonl", [contact_line(ADA, lists=["newsletter-nl"],
                                                             consents=signed_up())])
    import_file(app_context, path)
    erase_contact(app_context, ADA, actor="test")

    import_file(app_context, path)

    with transaction(app_context.sessions) as session:
        contact = store.find_contact(session, "ada@example.com")
        assert contact is not None
        decision = decide_for(session, contact, purpose="newsletter",
                              keyring=app_context.keyring, now=utcnow())
    assert (decision.eligible, decision.standing) == (False, Standing.SUPPRESSED)
    assert "erasure" in decision.reason


def test_erasing_an_unknown_address_still_suppresses_it(app_context: AppContext) -> None:
    result = erase_contact(app_context, "nobody@example.com", actor="test")
    assert not result.found
    assert result.suppression_added
    assert result.subscriber_hash == subscriber_hash("nobody@example.com")


def test_erasing_twice_keeps_one_suppression_dated_at_the_second(
        app_context: AppContext) -> None:
    _ada_with_everything(app_context)
    erase_contact(app_context, ADA, actor="test")
    with transaction(app_context.sessions) as session:
        first = session.scalars(select(Suppression.created_at)).one()
    again = erase_contact(app_context, ADA, actor="test")
    assert again.found is False
    assert counts(app_context)["suppressions"] == 1
    with transaction(app_context.sessions) as session:
        assert session.scalars(select(Suppression.created_at)).one() > first


def test_other_contacts_are_untouched(app_context: AppContext) -> None:
    _ada_with_everything(app_context)
    add_contact(app_context, "bob@example.com", events=confirmed(), lists=["newsletter-nl"])
    erase_contact(app_context, ADA, actor="test")
    found = counts(app_context)
    assert (found["contacts"], found["consent_events"], found["list_memberships"]) == (1, 2, 1)


def test_erase_command_asks_and_does_nothing_when_declined(
        app_context: AppContext, cli: Cli) -> None:
    _ada_with_everything(app_context)
    result = cli("contacts", "erase", ADA, "--local-only", input="n\n")
    assert result.exit_code == 4, result.output
    assert counts(app_context)["contacts"] == 1


def test_erase_command_with_yes_erases(app_context: AppContext, cli: Cli) -> None:
    _ada_with_everything(app_context)
    result = cli("contacts", "erase", ADA, "--yes", "--local-only")
    assert result.exit_code == 0, result.output
    assert counts(app_context)["contacts"] == 0


def test_erasing_only_here_a_person_still_subscribed_at_mailchimp_is_refused(
        app_context: AppContext, emulated_cli: Cli, emulator: MailchimpEmulator) -> None:
    # Rule 8: the person would keep getting mail, and without the push state syncd could
    # never unsubscribe them at Mailchimp later.
    _ada_with_everything(app_context)
    emulator.seed_member(ADA)
    result = emulated_cli("contacts", "erase", ADA, "--yes")
    assert result.exit_code == 4, result.output
    assert "member at Mailchimp (subscribed)" in result.output
    assert counts(app_context)["contacts"] == 1


def test_erase_guard_asks_mailchimp_about_a_member_syncd_never_pushed(
        app_context: AppContext, emulated_cli: Cli, emulator: MailchimpEmulator) -> None:
    # In the audience before syncd: syncd's own push state knows nothing of them.
    add_contact(app_context, ADA, events=confirmed())
    emulator.seed_member(ADA, "subscribed")
    result = emulated_cli("contacts", "erase", ADA, "--yes")
    assert result.exit_code == 4, result.output
    assert counts(app_context)["contacts"] == 1


def test_erase_guard_refuses_for_any_status_mailchimp_still_holds(
        app_context: AppContext, emulated_cli: Cli, emulator: MailchimpEmulator) -> None:
    # An unsubscribed member is still Mailchimp's copy of the person's data (Art. 17).
    add_contact(app_context, ADA, events=confirmed())
    emulator.seed_member(ADA, "unsubscribed")
    result = emulated_cli("contacts", "erase", ADA, "--yes")
    assert result.exit_code == 4, result.output
    assert "(unsubscribed)" in result.output


def test_erasing_a_person_mailchimp_does_not_have_erases_here(
        app_context: AppContext, emulated_cli: Cli) -> None:
    add_contact(app_context, "lead@example.com", events=confirmed("ebook"))
    result = emulated_cli("contacts", "erase", "lead@example.com", "--yes")
    assert result.exit_code == 0, result.output
    assert counts(app_context)["contacts"] == 0


def test_erase_at_esp_deletes_the_member_permanently(
        app_context: AppContext, cli: Cli, config_file: Path) -> None:
    _ada_with_everything(app_context)
    with MailchimpEmulator() as emu:
        emu.seed_member("ada@example.com")
        with config_file.open("a", encoding="utf-8") as out:
            out.write(f'[mailchimp]\napi_key = "{emu.api_key}"\naudience_id = "{emu.list_id}"\n'
                      f'base_url = "{emu.base_url}"\n')
        result = cli("contacts", "erase", ADA, "--yes", "--at-esp")
        assert result.exit_code == 0, result.output
        assert emu.member("ada@example.com") is None
    assert counts(app_context)["contacts"] == 0


def test_erase_at_esp_without_mailchimp_settings_erases_nothing(
        app_context: AppContext, cli: Cli) -> None:
    _ada_with_everything(app_context)
    result = cli("contacts", "erase", ADA, "--yes", "--at-esp")
    assert result.exit_code == 2
    assert "SYNCD_MAILCHIMP_API_KEY" in result.output
    assert counts(app_context)["contacts"] == 1
