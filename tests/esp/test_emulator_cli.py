"""`syncd emulator`: runs in the foreground, prints the base URL, stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import requests
import typer
from typer.testing import CliRunner

from syncd.cli import emulator_cmd

# A Typer app holding only this command, so the test does not depend on the others.
APP = (
    "import typer; from syncd.cli import emulator_cmd; app = typer.Typer(); "
    "emulator_cmd.register(app); app.command('noop')(lambda: None); app()"
)


def test_register_adds_the_emulator_command() -> None:
    app = typer.Typer()
    emulator_cmd.register(app)
    app.command("noop")(lambda: None)

    result = CliRunner().invoke(app, ["emulator", "--help"])

    assert result.exit_code == 0
    assert "--latency-ms" in result.output


def test_emulator_command_prints_base_url_serves_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", APP, "emulator", "--port", "0", "--list-id", "abc123def0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        health = requests.get(base_url.replace("/3.0", "/_emulator/health"), timeout=5).json()
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=10)

    assert base_url.startswith("http://127.0.0.1:")
    assert base_url.endswith("/3.0")
    assert health["list_id"] == "abc123def0"
    assert returncode == 0
