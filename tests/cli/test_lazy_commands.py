"""`syncd CMD` imports only CMD's module: the table it looks CMD up in must name the
command each module really registers, and the look-up must find CMD after the global
options."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import typer

from syncd.cli import _COMMAND_MODULES, _command_asked


@pytest.mark.parametrize(("name", "module"), sorted(_COMMAND_MODULES.items()))
def test_each_module_registers_the_command_it_is_listed_under(name: str, module: str) -> None:
    probe = typer.Typer()
    importlib.import_module(module).register(probe)
    names = ([c.name for c in probe.registered_commands]
             + [g.name for g in probe.registered_groups])
    assert names == [name]


@pytest.mark.parametrize(("argv", "expected"), [
    (["import", "contacts.jsonl"], "import"),
    (["--config", "sync", "import"], "import"),
    (["-c", "syncd.toml", "sync", "--full"], "sync"),
    (["--version"], None),
    (["--help"], None),
    ([], None),
    (["bogus"], None),
    (["--", "sync"], None),
])
def test_the_command_is_found_after_the_global_options(argv: list[str],
                                                       expected: str | None) -> None:
    assert _command_asked(argv) == expected


def test_a_command_run_imports_no_other_commands_module() -> None:
    code = ("import sys; sys.argv = ['syncd', 'db', '--help']\n"
            "from syncd.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('syncd.cli.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()[-1]
    assert "syncd.cli.db_cmd" in out
    assert "syncd.cli.sync_cmd" not in out
    assert "syncd.cli.serve_cmd" not in out
