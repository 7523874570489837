"""`syncd import` and `syncd contacts show|list` through the real CLI, including the
"done when" check of issue 2: a file mixing the rule examples gives the right
eligibility and reason for each person."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.crm import inspect
from syncd.crm.importer import import_file
from syncd.db import transaction
from tests.builders import add_contact, confirmed
from tests.crm.conftest import Cli, consent, contact_line, counts, signed_up, write_jsonl

RULE_EXAMPLES = [
    # rule 3: double opt-in
    contact_line("confirmed@example.com", first_name="Cora", lists=["newsletter-nl"],
                 consents=[consent(action="given", at="2026-03-01T09:00:00Z", source="web_form",
                                   form_url="https://example.org/signup", text_version="v3"),
                           consent(at="2026-03-01T09:30:00Z", source="web_form",
                                   text_version="v3", confirmation_token_hash="9f2c")]),
    # rule 3: never confirmed
    contact_line("unconfirmed@example.com", lists=["newsletter-nl"],
                 consents=[consent(action="given", at="2026-03-02T09:00:00Z")]),
    # rule 1: e-book lead
    contact_line("ebook@example.com", lists=["ebook-leads"],
                 consents=[consent("ebook", "given", "2026-03-03T09:00:00Z"),
                           consent("ebook", "confirmed", "2026-03-03T09:05:00Z")]),
    # rule 2: a pre-ticked box (refused)
    contact_line("preticked@example.com", lists=["newsletter-nl"],
                 consents=[consent(action="given", at="2026-03-04T09:00:00Z", prechecked=True)]),
    # rule 7: existing customer, soft opt-in
    contact_line("customer@example.com", customer=True, lists=["offers"],
                 consents=[consent("offers", "soft_opt_in", "2026-03-05T09:00:00Z")]),
    # rule 5: confirmed, then withdrawn
    contact_line("withdrawn@example.com",
                 consents=[consent(action="given", at="2026-03-06T08:00:00Z"),
                           consent(at="2026-03-06T09:00:00Z"),
                           consent(action="withdrawn", at="2026-03-20T09:00:00Z",
                                   source="esp_webhook")]),
]

EXPECTED = {
    "confirmed@example.com": (True, "confirmed", "newsletter consent confirmed"),
    "unconfirmed@example.com": (False, "unconfirmed", "never confirmed"),
    "ebook@example.com": (False, "other_purpose_only", "consent only for: ebook"),
    "customer@example.com": (False, "soft_opt_in_only", "existing customer (soft opt-in)"),
    "withdrawn@example.com": (False, "withdrawn", "withdrawn 2026-03-20"),
}


def _show(cli: Cli, email: str) -> dict[str, Any]:
    result = cli("contacts", "show", email, "--json")
    assert result.exit_code == 0, result.output
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


def test_done_when_rule_examples_import_with_the_right_eligibility_and_reason(
        cli: Cli, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "examples.jsonl", RULE_EXAMPLES)

    result = cli("import", str(path), "--skip-invalid")

    assert result.exit_code == 6, result.output
    assert ("line 4, field consents[0].prechecked: a pre-ticked box is not consent"
            in result.output)
    for email, (eligible, standing, reason) in EXPECTED.items():
        newsletter = _show(cli, email)["purposes"]["newsletter"]
        assert (newsletter["eligible"], newsletter["standing"]) == (eligible, standing), email
        assert reason in newsletter["reason"], email
    refused = cli("contacts", "show", "preticked@example.com", "--json")
    assert refused.exit_code == 7


def test_show_json_holds_lists_history_and_suppression(cli: Cli, tmp_path: Path) -> None:
    cli("import", str(write_jsonl(tmp_path / "in.jsonl", RULE_EXAMPLES[:1])))

    shown = _show(cli, "CONFIRMED@example.com")

    assert shown["email"] == "confirmed@example.com"
    assert shown["lists"] == ["newsletter-nl"]
    assert (shown["suppressed"], shown["undeliverable"]) == (False, False)
    assert [(e["action"], e["source"], e["text_version"]) for e in shown["history"]] == [
        ("given", "web_form", "v3"), ("confirmed", "web_form", "v3")]
    assert shown["history"][0]["form_url"] == "https://example.org/signup"
    assert shown["history"][1]["confirmation_proof"] is True
    assert set(shown["purposes"]) == {"newsletter", "offers", "ebook", "events"}


def test_show_reports_a_suppression(cli: Cli, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", RULE_EXAMPLES[:1])
    cli("import", str(path))
    cli("contacts", "erase", "confirmed@example.com", "--yes", "--local-only")
    cli("import", str(path))
    shown = _show(cli, "confirmed@example.com")
    assert shown["suppressed"] is True
    assert shown["suppressions"][0]["reason"] == "erasure"
    assert shown["purposes"]["newsletter"]["standing"] == "suppressed"


def test_show_unknown_contact_is_not_found(cli: Cli) -> None:
    result = cli("contacts", "show", "nobody@example.com")
    assert result.exit_code == 7
    assert "no contact" in result.output


def test_show_invalid_address_is_invalid_input(cli: Cli) -> None:
    assert cli("contacts", "show", "not-an-address").exit_code == 3


def test_show_prints_a_readable_report(cli: Cli, tmp_path: Path) -> None:
    cli("import", str(write_jsonl(tmp_path / "in.jsonl", RULE_EXAMPLES[:1])))
    result = cli("contacts", "show", "confirmed@example.com")
    assert result.exit_code == 0, result.output
    assert "newsletter consent confirmed" in result.stdout
    assert "newsletter-nl" in result.stdout


def test_import_with_a_bad_line_writes_nothing_and_exits_3(
        app_context: AppContext, cli: Cli, tmp_path: Path) -> None:
    result = cli("import", str(write_jsonl(tmp_path / "in.jsonl", RULE_EXAMPLES)))
    assert result.exit_code == 3
    assert "nothing imported" in result.output
    assert counts(app_context)["contacts"] == 0


def test_import_error_output_never_shows_the_bad_address(cli: Cli, tmp_path: Path) -> None:
    secret = "someone.private@@example.com"
    result = cli("import", str(write_jsonl(tmp_path / "in.jsonl", [contact_line(secret)])))
    assert result.exit_code == 3
    assert "line 1, field email: not a valid address" in result.output
    assert "someone.private" not in result.output


def test_import_json_report(cli: Cli, tmp_path: Path) -> None:
    result = cli("import", str(write_jsonl(tmp_path / "in.jsonl", RULE_EXAMPLES)),
                 "--skip-invalid", "--json")
    report = json.loads(result.stdout)
    assert (report["lines"], report["valid"], report["invalid"], report["applied"]) == (
        6, 5, 1, True)
    assert report["errors"][0]["field"] == "consents[0].prechecked"


def test_import_csv_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("email,lists,purpose,action,at\n"
                    "ada@example.com,newsletter-nl,newsletter,given,2026-03-01T09:00:00Z\n"
                    "ada@example.com,newsletter-nl,newsletter,confirmed,2026-03-01T10:00:00Z\n",
                    encoding="utf-8")
    assert cli("import", str(path)).exit_code == 0
    assert _show(cli, "ada@example.com")["purposes"]["newsletter"]["eligible"] is True


def test_import_of_a_missing_file_exits_3(cli: Cli, tmp_path: Path) -> None:
    result = cli("import", str(tmp_path / "absent.jsonl"))
    assert result.exit_code == 3
    assert "no such file" in result.output


def _people(ctx: AppContext) -> None:
    add_contact(ctx, "a@example.com", events=confirmed(), lists=["newsletter-nl"])
    add_contact(ctx, "b@example.com", events=confirmed("ebook"), lists=["ebook-leads"])
    add_contact(ctx, "c@example.com", events=confirmed(), lists=["newsletter-en"])
    add_contact(ctx, "d@example.com", customer=True, lists=["offers"])


@pytest.mark.parametrize(("options", "expected"), [
    ((), ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]),
    (("--eligible",), ["a@example.com", "c@example.com"]),
    (("--not-eligible",), ["b@example.com", "d@example.com"]),
    (("--list", "newsletter-en"), ["c@example.com"]),
    (("--purpose", "ebook", "--eligible"), ["b@example.com"]),
    (("--limit", "1", "--not-eligible"), ["b@example.com"]),
], ids=["all", "eligible", "not eligible", "one list", "another purpose", "limit"])
def test_list_filters(app_context: AppContext, cli: Cli, options: tuple[str, ...],
                      expected: list[str]) -> None:
    _people(app_context)
    result = cli("contacts", "list", "--json", *options)
    assert result.exit_code == 0, result.output
    assert [row["email"] for row in json.loads(result.stdout)] == expected


def test_list_plain_output_has_one_line_per_contact(app_context: AppContext, cli: Cli) -> None:
    _people(app_context)
    lines = cli("contacts", "list").stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["a@example.com", "newsletter-nl", "eligible"]
    assert len(lines) == 4


def test_list_unknown_list_is_refused(cli: Cli) -> None:
    result = cli("contacts", "list", "--list", "vip")
    assert result.exit_code == 2
    assert "unknown list 'vip'" in result.output


def test_listing_pages_through_contacts(app_context: AppContext, tmp_path: Path) -> None:
    import_file(app_context, write_jsonl(tmp_path / "in.jsonl", [
        contact_line(f"p{i:02d}@example.com", consents=signed_up() if i % 2 else [])
        for i in range(25)]))
    with transaction(app_context.sessions) as session:
        rows = list(inspect.rows(session, app_context.keyring, purpose="newsletter",
                                 now=utcnow(), eligible=True, page_size=4))
    assert [r.email for r in rows] == [f"p{i:02d}@example.com" for i in range(1, 25, 2)]
