"""Issue 11, findings 5 and 8 (import): a duplicate JSON key is refused, a confirmation
must confirm a valid sign-up (in the file or the ledger), lines and fields are bounded,
--skip-invalid with no valid line exits 3, and on a terminal a progress bar shows."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from syncd.context import AppContext
from syncd.crm.import_readers import MAX_LINE_BYTES
from syncd.crm.importer import import_file
from tests.builders import add_contact, at
from tests.crm.conftest import Cli, consent, contact_line, counts, signed_up, write_jsonl
from tests.service.conftest import REPO


def _messages(report: object) -> list[str]:
    return [str(error) for error in getattr(report, "errors", [])]


def test_a_duplicate_key_is_refused_naming_it(app_context: AppContext, tmp_path: Path) -> None:
    line = ('{"email": "ada@example.com", "consents": [{"purpose": "newsletter", '
            '"action": "given", "at": "2026-03-01T09:00:00Z", "prechecked": true, '
            '"prechecked": false}]}')
    path = write_jsonl(tmp_path / "in.jsonl", [line])

    report = import_file(app_context, path)

    assert not report.applied
    assert _messages(report) == ["line 1, field prechecked: the key appears twice in one object"]
    assert counts(app_context)["contacts"] == 0


def test_a_confirmation_whose_sign_up_was_refused_as_pre_ticked_is_refused_too(
        app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [
        contact_line(consents=[consent(action="given", at="2026-03-01T09:00:00Z",
                                       prechecked=True)]),
        contact_line(lists=["newsletter-nl"], consents=[consent()])])

    report = import_file(app_context, path, skip_invalid=True)

    assert not report.applied
    assert report.valid == 0
    assert any(m.startswith("line 2, field consents[0]: a confirmation must confirm a valid "
                            "sign-up") for m in _messages(report)), _messages(report)
    assert counts(app_context)["contacts"] == 0


def test_a_confirmation_may_confirm_a_sign_up_on_another_line_of_the_file(
        app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [
        contact_line(consents=[consent()]),
        contact_line(consents=[consent(action="given", at="2026-03-01T09:00:00Z")])])

    report = import_file(app_context, path)

    assert report.applied, _messages(report)
    assert report.consents_added == 2


def test_a_confirmation_may_confirm_a_sign_up_already_in_the_ledger(
        app_context: AppContext, tmp_path: Path) -> None:
    from syncd.consent.policy import Action

    add_contact(app_context, "ada@example.com", events=[("newsletter", Action.GIVEN, at(-1))])
    path = write_jsonl(tmp_path / "in.jsonl", [contact_line(consents=[consent()])])

    report = import_file(app_context, path)

    assert report.applied, _messages(report)


def test_a_confirmation_before_its_sign_up_is_refused(app_context: AppContext,
                                                      tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [contact_line(consents=[
        consent(at="2026-03-01T08:00:00Z"), consent(action="given", at="2026-03-01T09:00:00Z")])])

    report = import_file(app_context, path)

    assert not report.applied
    assert "a confirmation must confirm a valid sign-up" in _messages(report)[0]


def test_a_line_longer_than_the_bound_is_refused_without_keeping_it(
        app_context: AppContext, tmp_path: Path) -> None:
    huge = json.dumps(contact_line(first_name="x" * (MAX_LINE_BYTES + 10)))
    path = write_jsonl(tmp_path / "in.jsonl", [contact_line(consents=signed_up()), huge,
                                               contact_line("b@example.com")])

    report = import_file(app_context, path)

    assert _messages(report) == [f"line 2: longer than {MAX_LINE_BYTES} bytes"]
    assert report.lines == 3


def test_fields_are_bounded(app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [
        contact_line(attributes={f"k{i}": "v" for i in range(101)}),
        contact_line("b@example.com", attributes={"city": "x" * 2001}),
        contact_line("c@example.com", lists=["newsletter-nl"] * 101)])

    report = import_file(app_context, path)

    fields = [error.field for error in report.errors]
    assert fields == ["attributes", "attributes.city", "lists"]


def test_skip_invalid_with_no_valid_line_exits_3(cli: Cli, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [contact_line("not-an-address")])

    result = cli("import", "--skip-invalid", str(path))

    assert result.exit_code == 3


def test_import_on_a_terminal_shows_a_progress_bar_and_the_failure_once(
        config_file: Path, tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [
        contact_line(f"p{i}@example.com", consents=signed_up()) for i in range(50)])
    bad = write_jsonl(tmp_path / "bad.jsonl", [contact_line("not-an-address")])

    shown = _on_a_terminal(["--config", str(config_file), "import", str(good)])
    refused = _on_a_terminal(["--config", str(config_file), "import", str(bad)])

    assert "checking" in shown  # the bar of each pass: label, bar, rows, rate, eta
    assert "importing" in shown
    assert "eta" in shown
    assert "imported 50 of 50 lines" in shown
    assert refused.count("nothing imported") == 1
    assert "import_refused" not in refused


def test_import_with_json_on_a_terminal_prints_only_the_report(
        config_file: Path, tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [contact_line(consents=signed_up())])

    shown = _on_a_terminal(["--config", str(config_file), "import", "--json", str(good)])

    assert "checking" not in shown
    assert json.loads(shown[shown.index("{"):])["applied"] is True


def _on_a_terminal(args: list[str]) -> str:
    """Run `syncd ARGS` with stdout and stderr on a pseudo-terminal; its whole output."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env.update({"COLUMNS": "120", "TERM": "xterm", "SYNCD_LOG_FORMAT": "console"})
    proc = subprocess.Popen([sys.executable, "-m", "syncd", *args], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
