"""Webhook benchmark: Mailchimp unsubscribes into `syncd serve` on 127.0.0.1, each answered
only after its purge committed, on SQLite and PostgreSQL, side by side with a bare GET.

    python benchmarks/webhook_bench.py                    # both databases
    python benchmarks/webhook_bench.py --db sqlite --seconds 5

Per database: N contacts imported (double opt-in, one newsletter list each), then the
real service (`syncd serve`, its own process; its start-up sync against the emulator is
awaited first). The load comes from this process, an asyncio HTTP/1.1 client:
(floor) the validator GET on the same URL and server: the HTTP + routing cost alone;
(a) open loop: distinct unsubscribes at each `--rates` (default 200/s, 500/s), each sent
    at its scheduled moment: p50/p99 latency from that moment to the answer;
(b) closed loop: 16 clients back to back: sustained webhooks/s.
Server CPU per request (from /proc) for each phase, against the floor's. Then the
database is checked: every 2xx-answered unsubscribe has its inbox row applied and its
withdrawal recorded. Targets (issue 16): p99 < 25 ms at 200/s, >= 500/s sustained,
<= 1.2 ms server CPU per webhook. Figures are reported, never asserted.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import http_load

PATH = f"/webhooks/mailchimp/{common.WEBHOOK_SECRET}"


def unsubscribe(i: int, fired: datetime) -> http_load.Request:
    address = quote(common.email(i))
    return ("POST", PATH, (
        f"type=unsubscribe&fired_at={quote(fired.strftime('%Y-%m-%d %H:%M:%S'))}"
        "&data%5Baction%5D=unsub&data%5Breason%5D=manual&data%5Bid%5D=94826aa750"
        f"&data%5Bemail%5D={address}&data%5Bemail_type%5D=html"
        f"&data%5Bmerges%5D%5BEMAIL%5D={address}&data%5Bmerges%5D%5BFNAME%5D=First"
        f"&data%5Blist_id%5D={common.LIST_ID}&data%5Bcampaign_id%5D=cb398d21d2").encode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text: str = answer.read().decode()
        return text


def start_service(tree: common.Tree, url: str, emulator: common.Emulator, *,
                  prefix: tuple[str, ...] = (), start_seconds: float = 180,
                  **settings: str) -> tuple[subprocess.Popen[bytes], int]:
    """`syncd serve` on a free port (run by `prefix`, e.g. valgrind, when given, then with
    a fixed hash seed so that counted runs repeat; more SYNCD_* `settings`); returns once
    its start-up sync has finished."""
    port = free_port()
    env = tree.env(url, http_port=str(port), webhook_secrets=common.WEBHOOK_SECRET,
                   mailchimp_api_key=common.API_KEY, mailchimp_audience_id=common.LIST_ID,
                   mailchimp_base_url=emulator.base_url, sync_interval_minutes="10000",
                   reconcile_interval_minutes="10000", log_level="error", **settings)
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "syncd", "serve"],
                            env={**env, "PYTHONHASHSEED": "0"} if prefix else env,
                            cwd=tree.workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + start_seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            text = _metrics(port)
        except OSError:
            time.sleep(0.2)
            continue
        running = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                      if line.startswith("syncd_scheduler_jobs_running"))
        if any(line.startswith("syncd_runs_total{") for line in text.splitlines()) \
                and running == 0:
            return proc, port
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("syncd serve did not start, or its start-up sync did not finish")


def verify(url: str, answered: int) -> dict[str, Any]:
    applied = common.sql_scalar(url, "SELECT count(*) FROM webhook_events WHERE status = ?",
                                ("applied",))
    withdrawn = common.sql_scalar(url, "SELECT count(*) FROM consent_events WHERE action = ?",
                                  ("withdrawn",))
    return {"answered_2xx": answered, "inbox_applied": applied, "withdrawals": withdrawn,
            "every_answered_event_applied": applied == answered == withdrawn}


def run_one(tree: common.Tree, kind: str, contacts: int, *, rates: list[float],
            seconds: float, emulator: common.Emulator) -> dict[str, Any]:
    url = common.scratch_database(kind, tree.workdir, "syncd_bench_webhooks")
    seed = tree.workdir / "webhook-contacts.jsonl"
    if not seed.exists():
        common.write_contacts(seed, contacts)
    common.migrate(tree, url)
    seeded = common.import_file(tree, url, seed)
    emulator.call("POST", "/reset")
    proc, port = start_service(tree, url, emulator)
    fired = datetime.now(UTC).replace(microsecond=0)
    people = iter(range(1, contacts + 1))
    result: dict[str, Any] = {"database": kind, "contacts": contacts,
                              "seed_seconds": round(seeded.seconds, 1)}
    answered = 0
    try:
        gets = [("GET", PATH, b"")] * 3000
        result["floor_bare_get"], _ = http_load.measured(proc.pid, lambda: asyncio.run(
            http_load.closed_loop(port, gets, 8, seconds)))
        for rate in rates:
            batch = [unsubscribe(next(people), fired) for _ in range(int(rate * seconds))]
            summary, tally = http_load.measured(proc.pid, lambda b=batch, r=rate: asyncio.run(
                http_load.open_loop(port, b, r, seconds)))
            result[f"open_loop_{rate:g}_per_s"] = summary
            answered += len(tally.answered_ok)
        budget = min(contacts - answered, int(2000 * seconds))
        batch = [unsubscribe(next(people), fired) for _ in range(budget)]
        summary, tally = http_load.measured(proc.pid, lambda: asyncio.run(
            http_load.closed_loop(port, batch, 16, seconds)))
        result["closed_loop_16_clients"] = summary
        answered += len(tally.answered_ok)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    result["database_check"] = verify(url, answered)
    common.drop_database(url)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser_for(__doc__)
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0, 500.0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--quick", action="store_true", help="smaller: a first look")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 3.0
    contacts = int(sum(args.rates) * args.seconds + 2000 * args.seconds)
    document: dict[str, Any] = {"benchmark": "webhook", "targets": {
        "p99_ms_at_200_per_s": 25, "sustained_per_second": 500,
        "server_cpu_ms_per_webhook": 1.2}, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-webhook-") as tmp:
        tree = common.Tree(args.tree.resolve(), Path(tmp))
        document.update(common.metadata(tree))
        emulator = common.Emulator(tree, latency_ms=0)
        try:
            for kind in common.databases(args.db):
                document["runs"][kind] = run_one(tree, kind, contacts, rates=args.rates,
                                                 seconds=args.seconds, emulator=emulator)
        finally:
            emulator.stop()
    rows = []
    for kind, run in document["runs"].items():
        floor = run["floor_bare_get"]
        rows.append((kind, "bare GET (reference)", floor["per_second"], "-", "-",
                     floor["server_cpu_ms_per_request"]))
        for rate in args.rates:
            phase = run[f"open_loop_{rate:g}_per_s"]
            rows.append((kind, f"unsubscribe, open loop {rate:g}/s",
                         phase["achieved_per_second"], phase.get("p50_ms"),
                         phase.get("p99_ms"), phase["server_cpu_ms_per_request"]))
        closed = run["closed_loop_16_clients"]
        rows.append((kind, "unsubscribe, 16 clients closed loop", closed["per_second"],
                     closed.get("p50_ms"), closed.get("p99_ms"),
                     closed["server_cpu_ms_per_request"]))
        rows.append((kind, "check: every 2xx applied", "-", "-", "-",
                     run["database_check"]["every_answered_event_applied"]))
    common.report(document, args.out, "webhooks -> committed purge",
                  ("db", "phase", "req/s", "p50 ms", "p99 ms", "server CPU ms/req"), rows)
    return document


def headline(document: dict[str, Any]) -> dict[str, float]:
    """The figures benchmarks/compare.py sets side by side."""
    figures = {}
    for kind, run in document["runs"].items():
        open200 = run.get("open_loop_200_per_s", {})
        figures[f"webhook {kind} p99 ms at 200/s"] = open200.get("p99_ms", float("nan"))
        figures[f"webhook {kind} server CPU ms/webhook at 200/s"] = open200.get(
            "server_cpu_ms_per_request", float("nan"))
        figures[f"webhook {kind} sustained/s"] = run["closed_loop_16_clients"]["per_second"]
        figures[f"webhook {kind} bare GET CPU ms (reference)"] = run["floor_bare_get"][
            "server_cpu_ms_per_request"]
    return figures


def lost_in(document: dict[str, Any]) -> list[str]:
    """The databases where a delivery answered 2xx was not applied: a lost webhook makes
    every figure beside it meaningless, so the run fails (and compare.py with it)."""
    return [kind for kind, run in document["runs"].items()
            if not run["database_check"]["every_answered_event_applied"]]


if __name__ == "__main__":
    if lost := lost_in(main()):
        sys.exit(f"a webhook answered 2xx was not applied on: {', '.join(lost)}")
