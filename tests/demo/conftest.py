"""Fixtures for the demo: one real `syncd demo --json` run, shared by the tests that read
its output (it takes a few seconds)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DemoRun:
    returncode: int
    stdout: str
    stderr: str
    production_db: Path  # where SYNCD_DATABASE_URL pointed: the demo must not touch it

    @property
    def document(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.stdout)
        return result


def run_demo_cli(*args: str, env: dict[str, str],
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syncd", "demo", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def demo_json_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`syncd demo --json` with production-looking SYNCD_* settings in the environment,
    run once per test session even across xdist workers (they share the result file)."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        return _run_once(tmp_path_factory.mktemp("production"))
    shared = tmp_path_factory.getbasetemp().parent  # one directory per session
    with (shared / f"demo-{run_id}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = shared / f"demo-{run_id}.json"
        if cached.exists():
            saved = json.loads(cached.read_text("utf-8"))
            return DemoRun(**{**saved, "production_db": Path(saved["production_db"])})
        run = _run_once(shared / f"demo-{run_id}-production")
        cached.write_text(json.dumps({**asdict(run), "production_db": str(run.production_db)}),
                          "utf-8")
        return run


def _run_once(directory: Path) -> DemoRun:
    directory.mkdir(parents=True, exist_ok=True)
    production = directory / "production.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env.update({"SYNCD_DATABASE_URL": f"sqlite:///{production}",
                "SYNCD_SYNC_PUSH_UNCONFIRMED_AS_PENDING": "true",
                "PYTHONUNBUFFERED": "1"})
    done = run_demo_cli("--json", env=env)
    return DemoRun(done.returncode, done.stdout, done.stderr, production)
