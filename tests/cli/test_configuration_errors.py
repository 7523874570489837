"""Issue 11, findings 6 and 7: a wrong database URL, a taken emulator port and a bad
`demo --dir` are one line naming the problem with the documented exit code, never a
traceback; only `db upgrade`, `serve` and `sync` create or migrate a database, every
other command refuses a missing or unmigrated one and creates nothing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from syncd.db import make_engine
from syncd.exit_codes import ExitCode
from syncd.migrate import HEAD_REVISION, upgrade
from tests.cli.conftest import Invoke, tables_in


def _one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("error: ")
    assert "Traceback" not in text
    return lines[0]


@pytest.mark.parametrize(("url", "named"), [
    ("postgresql+psycopg2://postgres@127.0.0.1:5432/syncd", "driver 'psycopg2'"),
    ("sqlite://relative.db", "three slashes"),
    ("notaurl", "not a database URL"),
])
def test_a_bad_database_url_is_one_line_and_exit_2(syncd: Invoke, url: str,
                                                   named: str) -> None:
    result = syncd("contacts", "list", env={"SYNCD_DATABASE_URL": url})

    assert result.exit_code == ExitCode.CONFIG
    assert named in _one_error_line(result.stderr)
    assert "'database_url'" in result.stderr


def test_a_read_only_command_on_a_missing_sqlite_file_refuses_and_creates_nothing(
        syncd: Invoke, tmp_path: Path) -> None:
    typo = tmp_path / "tyop.db"

    result = syncd("contacts", "list", env={"SYNCD_DATABASE_URL": f"sqlite:///{typo}"})

    assert result.exit_code == ExitCode.CONFIG
    assert "no database at" in _one_error_line(result.stderr)
    assert not typo.exists()


@pytest.mark.parametrize("command", [("contacts", "list"), ("contacts", "show", "a@b.nl"),
                                     ("import", "missing.jsonl"), ("prune",)])
def test_commands_other_than_upgrade_serve_and_sync_refuse_an_unmigrated_database(
        syncd: Invoke, unmigrated_url: str, command: tuple[str, ...]) -> None:
    result = syncd(*command, env={"SYNCD_DATABASE_URL": unmigrated_url})

    assert result.exit_code == ExitCode.CONFIG
    assert "syncd db upgrade" in _one_error_line(result.stderr)
    assert tables_in(unmigrated_url) == []


def test_a_command_refuses_a_database_one_migration_behind_and_names_both_revisions(
        syncd: Invoke, unmigrated_url: str) -> None:
    engine = make_engine(unmigrated_url)
    upgrade(engine, "0010")
    engine.dispose()

    result = syncd("contacts", "list", env={"SYNCD_DATABASE_URL": unmigrated_url})

    assert result.exit_code == ExitCode.CONFIG
    assert (f"at revision 0010, this syncd needs {HEAD_REVISION}"
            in _one_error_line(result.stderr))


def test_db_current_on_an_unmigrated_database_exits_non_zero_and_migrates_nothing(
        syncd: Invoke, unmigrated_url: str) -> None:
    result = syncd("db", "current", env={"SYNCD_DATABASE_URL": unmigrated_url})

    assert result.exit_code == ExitCode.FAILED
    assert "syncd db upgrade" in result.stderr
    assert tables_in(unmigrated_url) == []


def test_db_upgrade_is_the_command_that_creates_the_schema(
        syncd: Invoke, unmigrated_url: str) -> None:
    upgraded = syncd("db", "upgrade", env={"SYNCD_DATABASE_URL": unmigrated_url})
    current = syncd("db", "current", env={"SYNCD_DATABASE_URL": unmigrated_url})

    assert upgraded.exit_code == 0, upgraded.output
    assert current.exit_code == 0, current.output
    assert "contacts" in tables_in(unmigrated_url)


def test_the_emulator_on_a_taken_port_is_one_line_and_exit_1(syncd: Invoke) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = syncd("emulator", "--port", str(port))

    assert result.exit_code == ExitCode.FAILED
    assert "cannot listen" in _one_error_line(result.stderr)
    assert result.stdout == ""  # no base URL printed for a server that is not there


def test_demo_dir_that_cannot_be_created_is_a_configuration_error(
        syncd: Invoke, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")

    result = syncd("demo", "--dir", str(blocker / "below"))

    assert result.exit_code == ExitCode.CONFIG
    assert "--dir" in _one_error_line(result.stderr)
    assert "did not behave as the rules say" not in result.stderr
