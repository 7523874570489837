"""Import: every class of bad input named by line and field, nothing written on a bad line,
--skip-invalid, idempotent re-import, history never rewritten; on both databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.consent.facts import decide_for
from syncd.consent.policy import Standing
from syncd.context import AppContext
from syncd.crm import store
from syncd.crm.import_report import MAX_REPORTED_ERRORS, ImportReport
from syncd.crm.importer import import_file
from syncd.db import transaction
from syncd.errors import InputError
from syncd.schema import ConsentEvent, Contact
from tests.crm.conftest import consent, contact_line, counts, signed_up, write_jsonl

SECRET_ADDRESS = "no-at-sign.example.com"


def _import(ctx: AppContext, path: Path, **options: Any) -> ImportReport:
    return import_file(ctx, path, **options)


def _revisions(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Contact.email_key, Contact.revision)).all())


def _messages(report: ImportReport) -> list[str]:
    return [str(error) for error in report.errors]


def _standing(ctx: AppContext, email: str, purpose: str = "newsletter") -> Standing:
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, email)
        assert contact is not None
        return decide_for(session, contact, purpose=purpose, keyring=ctx.keyring,
                          now=utcnow()).standing


GOOD = contact_line("good@example.com", lists=["newsletter-nl"],
                    consents=[consent(action="given", at="2026-03-01T09:00:00Z"), consent()])

BAD_LINES: dict[str, tuple[Any, str]] = {
    "bad JSON": ('{"email": "x@example.com",', "line 2: not valid JSON"),
    "non-object line": ('["x@example.com"]', "line 2: expected a JSON object, got an array"),
    "missing email": ({"first_name": "Ada"}, "line 2, field email: required but missing"),
    "bad address": (contact_line(SECRET_ADDRESS),
                    "line 2, field email: not a valid address: "),
    "empty address": (contact_line("  "), "line 2, field email: not a valid address: "),
    "unknown key": (contact_line(newsletter=True), "line 2, field newsletter: unknown key"),
    "unknown key in a consent": (contact_line(consents=[consent(checkbox="on")]),
                                 "line 2, field consents[0].checkbox: unknown key"),
    "unknown list": (contact_line(lists=["vip"]),
                     "line 2, field lists[0]: unknown list 'vip'"),
    "unknown purpose": (contact_line(consents=[consent(purpose="surveys")]),
                        "line 2, field consents[0].purpose: unknown purpose 'surveys'"),
    "unknown action": (contact_line(consents=[consent(action="subscribed")]),
                       "line 2, field consents[0].action: must be one of"),
    "pre-ticked": (contact_line(consents=[consent(action="given", prechecked=True)]),
                   "line 2, field consents[0].prechecked: a pre-ticked box is not consent"),
    "bad timestamp": (contact_line(consents=[consent(at="yesterday")]),
                      "line 2, field consents[0].at: not an ISO 8601 timestamp"),
    "timestamp not a string": (contact_line(consents=[consent(at=1700000000)]),
                               "line 2, field consents[0].at: must be an ISO 8601"),
    "future timestamp": (contact_line(consents=[consent(at="2999-01-01T00:00:00Z")]),
                         "line 2, field consents[0].at: is in the future"),
    "customer not a boolean": (contact_line(customer="yes"), "line 2, field customer: "),
    "lists not a list": (contact_line(lists="newsletter-nl"), "line 2, field lists: "),
    "attribute not a string": (contact_line(attributes={"city": 7}),
                               "line 2, field attributes.city: "),
    "name not a string": (contact_line(first_name=["Ada"]), "line 2, field first_name: "),
    "missing consent action": (contact_line(consents=[{"purpose": "newsletter",
                                                       "at": "2026-03-01"}]),
                               "line 2, field consents[0].action: required but missing"),
}


@pytest.mark.parametrize(("bad", "expected"), list(BAD_LINES.values()), ids=list(BAD_LINES))
def test_bad_line_is_named_by_line_and_field_and_nothing_is_written(
        app_context: AppContext, tmp_path: Path, bad: Any, expected: str) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [GOOD, bad])
    before = counts(app_context)

    report = _import(app_context, path)

    assert not report.applied
    assert any(message.startswith(expected) for message in _messages(report)), _messages(report)
    assert counts(app_context) == before


def test_error_for_a_bad_address_never_repeats_the_address(
        app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [contact_line(SECRET_ADDRESS)])
    report = _import(app_context, path)
    assert report.errors
    assert all(SECRET_ADDRESS not in message for message in _messages(report))


def test_a_line_with_several_problems_reports_each(app_context: AppContext,
                                                   tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [contact_line(
        SECRET_ADDRESS, lists=["vip"], consents=[consent(purpose="surveys", prechecked=True)])])
    fields = {error.field for error in _import(app_context, path).errors}
    assert fields == {"email", "lists[0]", "consents[0].purpose", "consents[0].prechecked"}


def test_empty_file_is_refused(app_context: AppContext, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="holds no records"):
        _import(app_context, path)


def test_missing_file_is_refused_naming_it(app_context: AppContext, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        _import(app_context, tmp_path / "absent.jsonl")


def test_invalid_utf8_line_is_named(app_context: AppContext, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"email": "\xff@x.org"}\n')
    assert _messages(_import(app_context, path)) == ["line 2: not valid UTF-8"]


def test_blank_lines_bom_and_crlf_are_tolerated_in_jsonl(app_context: AppContext,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\r\n\r\n   \n"
                     + json.dumps(contact_line("b@example.com")).encode() + b"\r\n")
    report = _import(app_context, path)
    assert (report.applied, report.valid, report.invalid) == (True, 2, 0)


def test_a_line_of_unicode_spaces_only_is_a_blank_line(app_context: AppContext,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + "\n\u00a0\u2003\n".encode()
                     + json.dumps(contact_line("b@example.com")).encode() + b"\n")
    report = _import(app_context, path)
    assert (report.applied, report.lines, report.valid, report.invalid) == (True, 2, 2, 0)


def test_line_numbers_count_blank_lines(app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [GOOD, "", "", contact_line(lists=["vip"])])
    assert _messages(_import(app_context, path))[0].startswith("line 4, field lists[0]")


def test_valid_file_creates_contacts_lists_and_ledger(app_context: AppContext,
                                                      tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [contact_line(
        "Ada@Example.com", first_name="Ada", last_name="Lovelace", crm_id="C-1",
        attributes={"city": "Delft"}, lists=["newsletter-nl", "events"],
        consents=[consent(action="given", at="2026-03-01T09:00:00Z", source="web_form",
                          form_url="https://example.org/signup", text_version="v3",
                          privacy_notice_version="2026-01", ip="192.0.2.1",
                          user_agent="Firefox"),
                  consent(source="web_form", confirmation_token_hash="ab12")])])

    report = _import(app_context, path)

    assert (report.contacts_created, report.consents_added, report.memberships_added) == (1, 2, 2)
    with transaction(app_context.sessions) as session:
        contact = store.find_contact(session, "ada@example.com")
        assert contact is not None
        assert (contact.email_display, contact.first_name, contact.crm_id,
                contact.attributes) == ("Ada@Example.com", "Ada", "C-1", {"city": "Delft"})
        assert store.list_names(session, contact.id) == ["events", "newsletter-nl"]
        given = session.scalars(select(ConsentEvent).where(ConsentEvent.action == "given")).one()
        assert (given.source, given.form_url, given.text_version, given.privacy_notice_version,
                given.ip, given.user_agent) == ("web_form", "https://example.org/signup", "v3",
                                                "2026-01", "192.0.2.1", "Firefox")
    assert _standing(app_context, "ada@example.com") is Standing.CONFIRMED


def test_source_defaults_to_import(app_context: AppContext, tmp_path: Path) -> None:
    _import(app_context, write_jsonl(tmp_path / "in.jsonl", [contact_line(
        consents=[{"purpose": "newsletter", "action": "given", "at": "2026-03-01"}])]))
    with transaction(app_context.sessions) as session:
        assert session.scalars(select(ConsentEvent.source)).one() == "import"


def test_naive_timestamp_is_utc(app_context: AppContext, tmp_path: Path) -> None:
    _import(app_context, write_jsonl(tmp_path / "in.jsonl", [contact_line(
        consents=[consent(action="given", at="2026-03-01T09:30:00")])]))
    with transaction(app_context.sessions) as session:
        moment = session.scalars(select(ConsentEvent.occurred_at)).one()
    assert moment.isoformat() == "2026-03-01T09:30:00+00:00"


def test_a_sign_up_with_its_confirmation_is_confirmed(app_context: AppContext,
                                                      tmp_path: Path) -> None:
    report = _import(app_context, write_jsonl(tmp_path / "in.jsonl",
                                              [contact_line(consents=signed_up())]))
    assert report.applied
    assert _standing(app_context, "ada@example.com") is Standing.CONFIRMED


def test_customer_is_soft_opt_in_not_newsletter_consent(app_context: AppContext,
                                                         tmp_path: Path) -> None:
    _import(app_context, write_jsonl(tmp_path / "in.jsonl", [contact_line(customer=True)]))
    assert _standing(app_context, "ada@example.com") is Standing.SOFT_OPT_IN_ONLY


def test_skip_invalid_imports_the_valid_lines_and_reports_the_rest(
        app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [
        GOOD, contact_line("b@example.com", consents=[consent(prechecked=True)]),
        contact_line("c@example.com")])

    report = _import(app_context, path, skip_invalid=True)

    assert (report.applied, report.lines, report.valid, report.invalid) == (True, 3, 2, 1)
    assert _messages(report) == ["line 2, field consents[0].prechecked: a pre-ticked box is "
                                 "not consent (rule 2, CJEU Planet49 C-673/17)"]
    with transaction(app_context.sessions) as session:
        emails = set(session.scalars(select(Contact.email_key)))
    assert emails == {"good@example.com", "c@example.com"}


def test_printed_errors_are_capped_with_a_count_of_the_rest(
        app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl",
                       [contact_line(lists=["vip"])] * (MAX_REPORTED_ERRORS + 20))
    report = _import(app_context, path)
    assert (len(report.errors), report.errors_not_shown) == (MAX_REPORTED_ERRORS, 20)


def test_reimporting_a_file_changes_nothing(app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [
        GOOD, contact_line("b@example.com", first_name="Bob", crm_id="C-2", customer=True,
                           attributes={"city": "Delft"}, lists=["offers"],
                           consents=[consent("offers", "soft_opt_in")])])
    _import(app_context, path)
    before = counts(app_context)
    with transaction(app_context.sessions) as session:
        revisions = _revisions(session)

    again = _import(app_context, path)

    assert (again.contacts_created, again.contacts_updated, again.consents_added,
            again.memberships_added) == (0, 0, 0, 0)
    assert counts(app_context) == before
    with transaction(app_context.sessions) as session:
        assert _revisions(session) \
            == revisions


def test_changed_field_bumps_the_revision_once(app_context: AppContext, tmp_path: Path) -> None:
    _import(app_context, write_jsonl(tmp_path / "a.jsonl", [contact_line(first_name="Ada")]))
    with transaction(app_context.sessions) as session:
        first = session.scalars(select(Contact.revision)).one()
    report = _import(app_context, write_jsonl(tmp_path / "b.jsonl",
                                              [contact_line(first_name="Augusta")]))
    with transaction(app_context.sessions) as session:
        assert session.scalars(select(Contact.revision)).one() == first + 1
    assert report.contacts_updated == 1


def test_importing_older_events_never_rewrites_history(app_context: AppContext,
                                                        tmp_path: Path) -> None:
    _import(app_context, write_jsonl(tmp_path / "new.jsonl", [contact_line(consents=[
        consent(action="given", at="2026-03-10T09:00:00Z"), consent(at="2026-03-10T10:00:00Z"),
        consent(action="withdrawn", at="2026-04-01T10:00:00Z", source="esp_webhook")])]))
    with transaction(app_context.sessions) as session:
        kept = [(e.id, e.action, e.occurred_at, e.recorded_at)
                for e in session.scalars(select(ConsentEvent).order_by(ConsentEvent.id))]

    _import(app_context, write_jsonl(tmp_path / "old.jsonl", [contact_line(consents=[
        consent(action="given", at="2026-02-01T10:00:00Z"), consent(at="2026-02-01T11:00:00Z")])]))

    with transaction(app_context.sessions) as session:
        events = list(session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)))
    assert [(e.id, e.action, e.occurred_at, e.recorded_at) for e in events[:3]] == kept
    assert len(events) == 5
    assert _standing(app_context, "ada@example.com") is Standing.WITHDRAWN


def test_same_address_on_several_lines_accumulates(app_context: AppContext,
                                                    tmp_path: Path) -> None:
    report = _import(app_context, write_jsonl(tmp_path / "in.jsonl", [
        contact_line(consents=[consent(action="given", at="2026-03-01T09:00:00Z")]),
        contact_line("ADA@example.com", lists=["newsletter-nl"], consents=signed_up())]))
    assert (report.contacts_created, report.consents_added) == (1, 2)
    assert _standing(app_context, "ada@example.com") is Standing.CONFIRMED


def test_small_chunks_give_the_same_result(app_context: AppContext, tmp_path: Path) -> None:
    lines = [contact_line(f"p{i}@example.com", consents=signed_up()) for i in range(7)]
    report = _import(app_context, write_jsonl(tmp_path / "in.jsonl", lines), chunk_lines=2)
    assert (report.contacts_created, report.consents_added) == (7, 14)
    assert counts(app_context)["contacts"] == 7


def test_crm_id_of_another_contact_is_refused_before_anything_is_written(
        app_context: AppContext, tmp_path: Path) -> None:
    _import(app_context, write_jsonl(tmp_path / "a.jsonl", [contact_line(crm_id="C-1")]))
    before = counts(app_context)
    report = _import(app_context, write_jsonl(tmp_path / "b.jsonl", [
        contact_line("b@example.com"), contact_line("c@example.com", crm_id="C-1")]))
    assert not report.applied
    assert _messages(report) == ["line 2, field crm_id: already belongs to another contact"]
    assert counts(app_context) == before


def test_crm_id_claimed_twice_in_one_file_refuses_the_file(
        app_context: AppContext, tmp_path: Path) -> None:
    report = _import(app_context, write_jsonl(tmp_path / "in.jsonl", [
        contact_line("b@example.com", crm_id="C-9"), contact_line("c@example.com", crm_id="C-9")]))
    assert (report.applied, report.valid, report.invalid) == (False, 1, 1)
    assert _messages(report) == ["line 2, field crm_id: already belongs to another contact"]
    assert counts(app_context)["contacts"] == 0


def test_crm_id_claimed_twice_chunks_apart_refuses_the_later_line_while_applying(
        app_context: AppContext, tmp_path: Path) -> None:
    report = _import(app_context, write_jsonl(tmp_path / "in.jsonl", [
        contact_line("b@example.com", crm_id="C-9"), contact_line("x@example.com"),
        contact_line("c@example.com", crm_id="C-9")]), chunk_lines=2)
    assert (report.applied, report.valid, report.invalid) == (True, 2, 1)
    assert _messages(report) == ["line 3, field crm_id: already belongs to another contact"]
    assert counts(app_context)["contacts"] == 2


def test_import_creates_a_suppressed_address_but_it_stays_blocked(
        app_context: AppContext, tmp_path: Path) -> None:
    from syncd.crm import suppression

    with transaction(app_context.sessions) as session:
        suppression.suppress(session, [app_context.keyring.address_hmac("ada@example.com")],
                             purpose="*", reason="abuse", actor="test")
    report = _import(app_context, write_jsonl(tmp_path / "in.jsonl",
                                              [contact_line(consents=signed_up())]))
    assert report.contacts_created == 1
    assert _standing(app_context, "ada@example.com") is Standing.SUPPRESSED


def test_csv_with_bom_and_crlf_maps_columns(app_context: AppContext, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(
        b"\xef\xbb\xbfemail,first_name,customer,lists,attr_city,purpose,action,at,source,"
        b"prechecked\r\n"
        b"ada@example.com,Ada,no,newsletter-nl;events,Delft,newsletter,given,"
        b"2026-03-01T09:00:00Z,web_form,false\r\n"
        b"ada@example.com,,,,,newsletter,confirmed,2026-03-01T10:00:00Z,web_form,\r\n"
        b",,,,,,,,,\r\n"
        b"bob@example.com,Bob,yes,,,,,,,\r\n")

    report = _import(app_context, path)

    assert (report.applied, report.valid, report.consents_added) == (True, 3, 2)
    with transaction(app_context.sessions) as session:
        ada = store.find_contact(session, "ada@example.com")
        assert ada is not None
        assert (ada.first_name, ada.attributes) == ("Ada", {"city": "Delft"})
        assert store.list_names(session, ada.id) == ["events", "newsletter-nl"]
    assert _standing(app_context, "ada@example.com") is Standing.CONFIRMED
    assert _standing(app_context, "bob@example.com") is Standing.SOFT_OPT_IN_ONLY


def test_csv_unknown_column_is_refused_naming_it(app_context: AppContext,
                                                 tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("email,newsletter\nada@example.com,yes\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"unknown column.*newsletter"):
        _import(app_context, path)


def test_csv_bad_cells_are_named_by_line_and_field(app_context: AppContext,
                                                   tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("email,customer,purpose,action,at,prechecked\n"
                    "ada@example.com,maybe,,,,\n"
                    "bob@example.com,,newsletter,given,2026-03-01,true\n"
                    "carl@example.com,,newsletter\n", encoding="utf-8")
    assert _messages(_import(app_context, path)) == [
        "line 2, field customer: must be true/false, yes/no or 1/0",
        "line 3, field consents[0].prechecked: a pre-ticked box is not consent "
        "(rule 2, CJEU Planet49 C-673/17)",
        "line 4: has 3 cells, the header has 6"]


def test_format_option_overrides_the_extension(app_context: AppContext, tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_text("email\nada@example.com\n", encoding="utf-8")
    assert _import(app_context, path, fmt="csv").contacts_created == 1
