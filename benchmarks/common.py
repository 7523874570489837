"""Shared benchmark plumbing: the tree under test, `syncd` CLI children, scratch databases,
generated contacts, the emulator process and the results files.

Every benchmark drives syncd only through its stable public entry points: the `syncd`
CLI (`python -m syncd ...`), HTTP, and settings in `SYNCD_*` variables (plus a TOML file
named by SYNCD_CONFIG for the lists). So one script measures any source tree: `--tree`
puts that tree first on PYTHONPATH of every child (benchmarks/compare.py runs two trees
side by side). Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PSEUDONYM_KEY = "benchmark-key-not-for-production"
API_KEY = "5e7e1e55c0ffee0ddba11fee1dcafe00-us1"
LIST_ID = "f1243a3b12"
WEBHOOK_SECRET = "benchmark-webhook-secret-0123456789"
PG_ADMIN = os.environ.get("SYNCD_BENCH_POSTGRES_URL",
                          "postgresql://postgres@127.0.0.1:5432/postgres")
LISTS_TOML = """
[lists.newsletter-nl]
purpose = "newsletter"
[lists.newsletter-en]
purpose = "newsletter"
[lists.events]
purpose = "events"
"""
DATABASES = ("sqlite", "postgresql")


# -- the tree under test ----------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    """A syncd source tree, and the settings every child of one benchmark shares."""

    path: Path
    workdir: Path

    def env(self, database_url: str, **settings: str) -> dict[str, str]:
        config = self.workdir / "syncd.toml"
        if not config.exists():
            config.write_text(LISTS_TOML, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
        env.update({"PYTHONPATH": str(self.path), "SYNCD_CONFIG": str(config),
                    "SYNCD_DATABASE_URL": database_url, "SYNCD_PSEUDONYM_KEY": PSEUDONYM_KEY,
                    "SYNCD_LOG_LEVEL": "warning", "SYNCD_LOG_FORMAT": "json"})
        env.update({f"SYNCD_{k.upper()}": v for k, v in settings.items()})
        return env

    def commit(self) -> str:
        out = subprocess.run(["git", "-C", str(self.path), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=False)
        # Dirty only if the code under test differs (results files change on every run).
        dirty = subprocess.run(["git", "-C", str(self.path), "status", "--porcelain",
                                "--untracked-files=no", "--", "syncd", "mailchimp_emulator"],
                               capture_output=True, text=True, check=False).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")


@dataclass(frozen=True)
class ChildResult:
    stdout: str
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float


def run_syncd(tree: Tree, env: dict[str, str], *args: str, timeout: float = 1800,
              ok_codes: tuple[int, ...] = (0,)) -> ChildResult:
    """`python -m syncd ARGS` in its own process: wall time, its own CPU and peak RSS
    (wait4's rusage of that child alone)."""
    return run_child([sys.executable, "-m", "syncd", *args], env, timeout=timeout,
                     ok_codes=ok_codes, cwd=tree.workdir)


def run_child(argv: list[str], env: dict[str, str], *, timeout: float = 1800,
              ok_codes: tuple[int, ...] = (0,), cwd: Path | None = None) -> ChildResult:
    """A child process measured alone: os.wait4 gives that child's own rusage."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, text=True)
        killer = threading.Timer(timeout, proc.kill)  # every child bounded in time
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode not in ok_codes:
        raise SystemExit(f"{' '.join(argv[2:5])} exited {proc.returncode}:\n{stderr[-3000:]}")
    return ChildResult(stdout, seconds, usage.ru_utime + usage.ru_stime,
                       usage.ru_maxrss / 1024)


def last_json(stdout: str) -> dict[str, Any]:
    """The JSON document a `--json` command printed (possibly over several lines)."""
    start = stdout.find("{")
    result: dict[str, Any] = json.loads(stdout[start:])
    return result


# -- databases ---------------------------------------------------------------------------


def scratch_database(kind: str, workdir: Path, name: str, template: str | None = None) -> str:
    """A fresh, empty database: a SQLite file in workdir, or a PostgreSQL database
    (dropped first), optionally a copy of `template` (another scratch database)."""
    if kind == "sqlite":
        path = workdir / f"{name}.db"
        path.unlink(missing_ok=True)
        if template is not None:
            path.write_bytes(Path(template.removeprefix("sqlite:///")).read_bytes())
        return f"sqlite:///{path}"
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        source = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{source}')
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    if url.startswith("sqlite:///"):
        # WAL mode leaves -wal and -shm beside the file: a new database of the same name
        # would pick up the old one's log ("disk I/O error" at its first migration).
        path = Path(url.removeprefix("sqlite:///"))
        for leftover in (path, path.with_name(path.name + "-wal"),
                         path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        return
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def sql_scalar(url: str, query: str, params: tuple[Any, ...] = ()) -> Any:
    """One value from the database under test, outside syncd (for the checks)."""
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(query, params).fetchone()[0]
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(query.replace("?", "%s"), params).fetchone()
        return row[0] if row else None


# -- generated contacts ------------------------------------------------------------------


def contact_line(i: int, *, confirmed: bool = True, lists: tuple[str, ...] | None = None,
                 first_name: str | None = None) -> str:
    """One import line: a contact with a list and a double opt-in (or a bare `given`)."""
    day = 1 + i % 28
    consents: list[dict[str, Any]] = [
        {"purpose": "newsletter", "action": "given", "at": f"2026-03-{day:02d}T09:00:00Z",
         "source": "web_form", "form_url": "https://example.org/signup", "text_version": "v3",
         "privacy_notice_version": "2026-01", "ip": "192.0.2.1"}]
    if confirmed:
        consents.append({"purpose": "newsletter", "action": "confirmed",
                         "at": f"2026-03-{day:02d}T09:30:00Z", "source": "web_form",
                         "confirmation_token_hash": f"{i:064x}"})
    return json.dumps({
        "email": email(i), "first_name": first_name or f"First{i}", "last_name": f"Last{i}",
        "crm_id": f"C-{i}", "lists": list(lists or (("newsletter-nl", "newsletter-en")[i % 2],)),
        "attributes": {"city": "Delft"}, "consents": consents}) + "\n"


def email(i: int) -> str:
    return f"person{i}@example.org"


def write_contacts(path: Path, count: int, **options: Any) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for i in range(1, count + 1):
            out.write(contact_line(i, **options))
    return path


def migrate(tree: Tree, url: str) -> None:
    """`syncd db upgrade`: the schema of that tree on a fresh database."""
    run_syncd(tree, tree.env(url), "db", "upgrade")


def import_file(tree: Tree, url: str, path: Path) -> ChildResult:
    """`syncd import --json PATH` into a migrated database."""
    return run_syncd(tree, tree.env(url), "import", "--json", str(path))


# -- the emulator ------------------------------------------------------------------------


class Emulator:
    """`syncd emulator --port 0` in its own process, like a remote Mailchimp."""

    def __init__(self, tree: Tree, latency_ms: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "emulator", "--port", "0", "--api-key", API_KEY,
             "--list-id", LIST_ID, "--latency-ms", str(latency_ms)],
            env=tree.env("sqlite://"), cwd=tree.workdir, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http://127.0.0.1"):
            raise SystemExit("the emulator did not start")
        self.control = self.base_url.removesuffix("/3.0") + "/_emulator"

    def call(self, method: str, path: str) -> Any:
        import urllib.request

        request = urllib.request.Request(self.control + path, method=method,
                                         data=b"{}" if method != "GET" else None)
        with urllib.request.urlopen(request, timeout=60) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


# -- results -----------------------------------------------------------------------------


def metadata(tree: Tree) -> dict[str, Any]:
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "git_commit": tree.commit(), "tree": str(tree.path),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()}}


def write_results(name: str, document: dict[str, Any], out: Path | None = None) -> Path:
    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    print(title)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))


def parser_for(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring as help, and the tree options."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_tree_options(parser)
    return parser


def report(document: dict[str, Any], out: Path | None, title: str, header: tuple[str, ...],
           rows: list[tuple[Any, ...]]) -> None:
    """Write the results file and print the short table, titled with commit and load."""
    path = write_results(document["benchmark"], document, out)
    print_table(f"{title} ({document['git_commit']}, load "
                f"{document['load_average_at_start']})", header, rows)
    print(f"written to {path}")


def add_tree_options(parser: Any) -> None:
    parser.add_argument("--tree", type=Path, default=ROOT,
                        help="the syncd source tree to measure (default: this one)")
    parser.add_argument("--out", type=Path, help="results file (default: benchmarks/results/)")
    parser.add_argument("--db", choices=[*DATABASES, "both"], default="both")


def databases(choice: str) -> list[str]:
    return list(DATABASES) if choice == "both" else [choice]
