"""Push benchmark: syncd's sync against the Mailchimp emulator with 20 ms per call, side
by side with the naive per-member loop most plugins use.

    python benchmarks/push_bench.py            # 100k first push, 1M for the memory check
    python benchmarks/push_bench.py --quick    # 20k and 100k

(a) first push of N confirmed contacts: write calls, peak concurrent connections (from
    the emulator), wall time, contacts/s, peak RSS; the floor is 10 connections x 500
    members x 20 ms, i.e. ceil(N/500)/10 x 20 ms, plus local CPU.
(b) the naive loop: one official-client PUT per member, sequential, a new connection
    each (the stock client), on a sample; extrapolated to N.
(c) a no-change re-run over the same N contacts: write calls (must be 0) and time.
(d) peak RSS of a first push of N and of 10 x N, each in a fresh process.
The emulator runs in its own process (as Mailchimp would), each push in a fresh one.
SQLite, seeded with bulk inserts through SQLAlchemy Core. Figures are reported, never
asserted; results go to benchmarks/results/push.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "push.json"
API_KEY = "5e7e1e55c0ffee0ddba11fee1dcafe00-us1"
LIST_ID = "f1243a3b12"
LATENCY_MS = 20.0
PSEUDONYM_KEY = "benchmark-key-not-for-production"
LISTS = {"newsletter-nl": "newsletter", "newsletter-en": "newsletter", "events": "events"}


def _settings(database_url: str, base_url: str) -> Any:
    from syncd.config import ListSettings, load_settings

    return load_settings(None, database_url=database_url, pseudonym_key=PSEUDONYM_KEY,
                         mailchimp_api_key=API_KEY, mailchimp_audience_id=LIST_ID,
                         mailchimp_base_url=base_url, log_level="warning",
                         lists={n: ListSettings(purpose=p) for n, p in LISTS.items()})


# -- seeding ------------------------------------------------------------------------


def seed(path: Path, count: int) -> None:
    """A migrated SQLite database with `count` contacts, each with a double opt-in
    (given + confirmed) and one newsletter list: bulk inserts, not the store functions."""
    from sqlalchemy import insert, select
    from sqlalchemy.orm import Session

    from syncd.context import AppContext
    from syncd.migrate import upgrade
    from syncd.schema import Contact, InternalList, ListMembership
    from syncd.store import ledger as chain_ledger

    ctx = AppContext.open(_settings(f"sqlite:///{path}", "http://127.0.0.1:1/3.0"))
    upgrade(ctx.engine)
    ctx.sync_lists()
    now = datetime.now(UTC)
    given = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with ctx.engine.begin() as conn:
        list_id = conn.execute(select(InternalList.id).where(
            InternalList.name == "newsletter-nl")).scalar_one()
        step = 20_000
        for start in range(0, count, step):
            ids = range(start + 1, min(start + step, count) + 1)
            conn.execute(insert(Contact), [
                {"id": i, "email_key": f"person{i}@example.org",
                 "email_display": f"person{i}@example.org", "first_name": f"First{i}",
                 "last_name": f"Last{i}", "attributes": {}, "is_customer": False,
                 "created_at": now, "updated_at": now, "revision": 3} for i in ids])
            events = []
            for i in ids:
                for action, offset in (("given", 0), ("confirmed", 30)):
                    events.append({
                        "contact_id": i, "purpose": "newsletter", "action": action,
                        "occurred_at": given + timedelta(minutes=offset), "recorded_at": now,
                        "source": "web_form", "email_at_time": f"person{i}@example.org",
                        "ip": "192.0.2.1", "dedupe_key": f"{i:032x}{action}"})
            chain_ledger.append(Session(bind=conn), events)  # linked into the ledger's chain
            conn.execute(insert(ListMembership), [
                {"contact_id": i, "list_id": list_id, "added_at": now, "source": "bench"}
                for i in ids])
    ctx.close()


# -- the emulator process -----------------------------------------------------------


class EmulatorProcess:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", "emulator"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        self.control = self.base_url.removesuffix("/3.0") + "/_emulator"

    def _call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.control + path, method=method, data=(
            b"{}" if method != "GET" else None))
        with urllib.request.urlopen(request, timeout=60) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def reset(self) -> None:
        self._call("POST", "/reset")

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/stats")
        return result

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# -- children: each measurement in a fresh process ------------------------------------


def child_emulator() -> None:
    """The emulator in its own process, like a remote Mailchimp; stops with its parent."""
    from mailchimp_emulator import MailchimpEmulator

    with MailchimpEmulator(api_key=API_KEY, list_id=LIST_ID, latency_ms=LATENCY_MS) as emu:
        print(emu.base_url, flush=True)
        while True:
            time.sleep(3600)


def child_push(database_url: str, base_url: str, rerun: bool) -> None:
    from syncd.context import AppContext
    from syncd.sync.run import run_sync

    ctx = AppContext.open(_settings(database_url, base_url))
    started, cpu = time.perf_counter(), time.process_time()
    report = run_sync(ctx)
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        # CPU seconds of this process (all threads): what the machine's load cannot skew.
        "cpu_seconds": time.process_time() - cpu,
        "seconds": seconds, "added": report.added, "write_calls": report.write_calls,
        "failed": report.failed, "parked": report.parked,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if rerun:
        started = time.perf_counter()
        again = run_sync(ctx)
        result["rerun_seconds"] = time.perf_counter() - started
        result["rerun_write_calls"] = again.write_calls
        result["rerun_considered"] = again.considered
    ctx.close()
    print(json.dumps(result))


def child_naive(base_url: str, sample: int) -> None:
    """What most plugins do: the stock official client, one PUT per member, in a loop."""
    import hashlib

    import mailchimp_marketing

    client = mailchimp_marketing.Client()
    client.set_config({"api_key": API_KEY})
    client.api_client.host = base_url
    started = time.perf_counter()
    for i in range(sample):
        email = f"naive{i}@example.org"
        client.lists.set_list_member(LIST_ID, hashlib.md5(email.encode()).hexdigest(), {
            "email_address": email, "status_if_new": "subscribed",
            "merge_fields": {"FNAME": f"First{i}", "LNAME": f"Last{i}"}})
    print(json.dumps({"seconds": time.perf_counter() - started, "members": sample}))


def _run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                         text=True, check=False, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- the run --------------------------------------------------------------------------


def first_push(emu: EmulatorProcess, template: Path, work: Path, run: int, *,
               rerun: bool) -> dict[str, Any]:
    db = work / f"push-{run}.db"
    shutil.copy(template, db)
    emu.reset()
    result = _run_child("push", f"sqlite:///{db}", emu.base_url, "1" if rerun else "0")
    stats = emu.stats()
    result["emulator_write_calls"] = stats["write_calls"]
    result["peak_concurrency"] = stats["peak_concurrency"]
    result["throttled"] = stats["throttled"]
    db.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "emulator":
            child_emulator()
        elif kind == "push":
            child_push(rest[0], rest[1], rest[2] == "1")
        else:
            child_naive(rest[0], int(rest[1]))
        return

    n = 20_000 if args.quick else 100_000
    big = 10 * n
    repeat = args.repeat or (1 if args.quick else 3)
    sample = 200 if args.quick else 500
    work = Path(tempfile.mkdtemp(prefix="syncd-push-bench-"))
    emu = EmulatorProcess()
    try:
        started = time.perf_counter()
        template = work / "template.db"
        seed(template, n)
        print(f"seeded {n} contacts in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        runs = [first_push(emu, template, work, r, rerun=True) for r in range(repeat)]
        emu.reset()
        naive = _run_child("naive", emu.base_url, str(sample))
        naive_stats = emu.stats()
        big_template = work / "big.db"
        started = time.perf_counter()
        seed(big_template, big)
        print(f"seeded {big} contacts in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
        big_run = first_push(emu, big_template, work, 99, rerun=False)
    finally:
        emu.stop()
        shutil.rmtree(work, ignore_errors=True)

    seconds = statistics.median(r["seconds"] for r in runs)
    floor = math.ceil(n / 500) / 10 * LATENCY_MS / 1000
    naive_per_member = naive["seconds"] / naive["members"]
    results = {
        "latency_ms": LATENCY_MS, "contacts": n, "repeat": repeat,
        "a_first_push": {
            "write_calls_median": statistics.median(r["write_calls"] for r in runs),
            "emulator_write_calls": [r["emulator_write_calls"] for r in runs],
            "target_write_calls_max": math.ceil(n / 500) + 2,
            "peak_concurrency": max(r["peak_concurrency"] for r in runs),
            "throttled_429": sum(r["throttled"] for r in runs),
            "seconds_median": seconds, "seconds_all": [r["seconds"] for r in runs],
            "cpu_seconds_median": statistics.median(r["cpu_seconds"] for r in runs),
            "load_average_1min": os.getloadavg()[0],
            "contacts_per_second": n / seconds,
            "network_floor_seconds": floor,
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
            "failed": sum(r["failed"] for r in runs),
        },
        "b_naive_loop": {
            "sample_members": naive["members"], "seconds": naive["seconds"],
            "seconds_per_member": naive_per_member,
            "extrapolated_seconds": naive_per_member * n,
            "write_calls": naive_stats["write_calls"],
            "syncd_speedup": naive_per_member * n / seconds,
        },
        "c_no_change_rerun": {
            "write_calls": [r["rerun_write_calls"] for r in runs],
            "contacts_read": [r["rerun_considered"] for r in runs],
            "seconds_median": statistics.median(r["rerun_seconds"] for r in runs),
        },
        "d_memory": {
            "contacts_small": n, "peak_rss_mb_small": runs[0]["peak_rss_mb"],
            "contacts_big": big, "peak_rss_mb_big": big_run["peak_rss_mb"],
            "seconds_big": big_run["seconds"], "write_calls_big": big_run["write_calls"],
            "rss_ratio_big_over_small": big_run["peak_rss_mb"] / runs[0]["peak_rss_mb"],
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    a, b, c, d = (results[k] for k in ("a_first_push", "b_naive_loop", "c_no_change_rerun",
                                       "d_memory"))
    rows = [
        ("(a) first push", f"{n} contacts",
         f"{a['write_calls_median']:.0f} write calls (target <= {a['target_write_calls_max']}), "
         f"peak {a['peak_concurrency']} connections, {a['seconds_median']:.2f} s median, "
         f"{a['contacts_per_second']:,.0f} contacts/s ({a['cpu_seconds_median']:.2f} CPU s), "
         f"floor {floor:.2f} s, "
         f"RSS {a['peak_rss_mb']:.0f} MB"),
        ("(b) naive loop", f"{b['sample_members']} sampled",
         f"{b['seconds_per_member'] * 1000:.1f} ms/member -> {b['extrapolated_seconds']:,.0f} s "
         f"for {n}; syncd is {b['syncd_speedup']:,.0f}x faster"),
        ("(c) no-change re-run", f"{n} contacts",
         f"{c['write_calls']} write calls, {c['seconds_median'] * 1000:.0f} ms median"),
        ("(d) memory", f"{n} vs {big}",
         f"{d['peak_rss_mb_small']:.0f} MB vs {d['peak_rss_mb_big']:.0f} MB "
         f"(x{d['rss_ratio_big_over_small']:.2f}); {big} pushed in {d['seconds_big']:.1f} s"),
    ]
    for name, size, figures in rows:
        print(f"{name:<22} {size:<20} {figures}")


if __name__ == "__main__":
    main()
