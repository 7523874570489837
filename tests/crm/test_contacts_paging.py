"""Issue 11, finding 8: `contacts list` says "page by page"; --after makes that true."""

from __future__ import annotations

import json
from pathlib import Path

from syncd.context import AppContext
from tests.crm.conftest import Cli, contact_line, signed_up, write_jsonl


def test_contacts_list_pages_with_after(cli: Cli, app_context: AppContext,
                                        tmp_path: Path) -> None:
    cli("import", str(write_jsonl(tmp_path / "in.jsonl", [
        contact_line(f"p{i:02d}@example.com", consents=signed_up()) for i in range(5)])))

    first = cli("contacts", "list", "--json", "--limit", "2")
    last_id = json.loads(first.stdout)[-1]["id"]
    second = cli("contacts", "list", "--json", "--limit", "2", "--after", str(last_id))

    assert [r["email"] for r in json.loads(first.stdout)] == ["p00@example.com",
                                                              "p01@example.com"]
    assert [r["email"] for r in json.loads(second.stdout)] == ["p02@example.com",
                                                               "p03@example.com"]
    assert f"--after {last_id}" in first.stderr
