"""Issue 11, finding 8: --version, --help without value types for flags and without a
sentence broken where the source line ends, `contacts list` pages that really page, a
TOML type error named by its TOML key, and the licence as an SPDX expression."""

from __future__ import annotations

import tomllib
from pathlib import Path

from syncd import __version__
from tests.cli.conftest import Invoke
from tests.service.conftest import REPO


def test_version_prints_the_version(syncd: Invoke) -> None:
    result = syncd("--version")

    assert result.exit_code == 0
    assert result.stdout.strip() == f"syncd {__version__}"


def test_help_shows_no_bool_type_for_flags(syncd: Invoke) -> None:
    result = syncd("contacts", "list", "--help", env={"COLUMNS": "100"})

    assert result.exit_code == 0
    assert "<bool>" not in result.stdout
    assert "--not-eligible" in result.stdout


def test_help_flows_a_docstring_paragraph_instead_of_breaking_it_mid_sentence(
        syncd: Invoke) -> None:
    result = syncd("--help", env={"COLUMNS": "200"})

    demo = next(line for line in result.stdout.splitlines() if " demo " in line)
    # The first paragraph of `demo`'s docstring spans two source lines; on a wide
    # terminal it is one line of help, not cut after "Mailchimp emulator,".
    assert "purge an unsubscribe webhook" in demo


def test_a_toml_type_error_is_reported_under_the_toml_key(syncd: Invoke,
                                                          tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text('[http]\nport = "eighty"\n', encoding="utf-8")

    result = syncd("--config", str(config), "contacts", "list")

    assert result.exit_code == 2
    assert f"({config}: [http] port)" in result.stderr
    assert "SYNCD_HTTP_PORT" not in result.stderr


def test_the_licence_is_an_spdx_expression_with_its_file() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
