"""The emulator starts with pre-existing members from a file (an audience that already
had members before syncd), and then treats them as Mailchimp does."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mailchimp_emulator import MailchimpEmulator
from mailchimp_emulator.seed_file import SeedFileError, read_members, seed_members
from tests.esp.test_emulator_cli import APP

MEMBERS = [
    {"email_address": "ada@example.org", "status": "subscribed",
     "merge_fields": {"FNAME": "Ada"}, "timestamp_opt": "2019-05-01T10:00:00+00:00"},
    {"email_address": "left@example.org", "status": "unsubscribed"},
]


def test_members_file_in_every_format_reads_the_same(tmp_path: Path) -> None:
    array = tmp_path / "a.json"
    array.write_text(json.dumps(MEMBERS), encoding="utf-8")
    wrapped = tmp_path / "b.json"
    wrapped.write_text(json.dumps({"members": MEMBERS}), encoding="utf-8")
    lines = tmp_path / "c.jsonl"
    lines.write_text("\n".join(json.dumps(m) for m in MEMBERS) + "\n", encoding="utf-8")

    assert read_members(array) == read_members(wrapped) == read_members(lines) == MEMBERS


def test_a_bad_members_file_names_the_line_never_the_address(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(MEMBERS[0]) + '\n{"status": "subscribed"}\n', encoding="utf-8")

    with pytest.raises(SeedFileError, match="line 2") as exc:
        read_members(path)
    assert "@" not in str(exc.value)


def test_seeded_unsubscribed_member_is_in_compliance_state_as_at_mailchimp(
        tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(MEMBERS), encoding="utf-8")
    with MailchimpEmulator() as emu:
        seed_members(emu, read_members(path))
        answer = requests.patch(
            f"{emu.base_url}/lists/{emu.list_id}/members/"
            + emu.member("left@example.org")["id"],  # type: ignore[index]
            json={"status": "subscribed"}, auth=("any", emu.api_key), timeout=5)

        assert emu.member("ada@example.org")["merge_fields"]["FNAME"] == "Ada"  # type: ignore[index]
    assert (answer.status_code, answer.json()["title"]) == (400, "Member In Compliance State")


def test_emulator_command_starts_with_the_members_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(MEMBERS), encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-c", APP, "emulator", "--port", "0", "--members", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        listed = requests.get(base_url.replace("/3.0", "/_emulator/members"), timeout=5).json()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)

    assert sorted(m["email_address"] for m in listed["members"]) == [
        "ada@example.org", "left@example.org"]
