"""Audience benchmark: `syncd audience pull` and `syncd audience audit` of an audience that
already had N members, against the Mailchimp emulator with 20 ms per call.

    python benchmarks/audience_bench.py              # 100k, then 1M for the memory check
    python benchmarks/audience_bench.py --quick      # 10k and 100k
    python benchmarks/audience_bench.py --sizes 100000

Per size: read calls (the floor is ceil(N/1000) + 2: count=1000 is Mailchimp's maximum,
archived members need their own pass), wall time, CPU seconds and peak RSS of the syncd
process, for the pull and the audit each in a fresh process. The emulator runs in its own
process (as Mailchimp would) holding N members (90 % subscribed, 8 % unsubscribed, 2 %
cleaned); 10 % of them match a CRM contact with a confirmed consent (SQLite, seeded as
in push_bench). Peak RSS at N and 10 x N side by side is the bounded-memory check: one
page in memory at a time, so it should stay flat. Figures are reported, never asserted;
results go to benchmarks/results/audience.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from push_bench import API_KEY, LIST_ID, ROOT, _settings, seed

RESULTS = Path(__file__).resolve().parent / "results" / "audience.json"
LATENCY_MS = 20.0
MATCHED_SHARE = 10  # one member in ten is a CRM contact


def child_emulator(members: int) -> None:
    """The emulator in its own process with `members` pre-existing members."""
    from mailchimp_emulator import MailchimpEmulator

    with MailchimpEmulator(api_key=API_KEY, list_id=LIST_ID, latency_ms=0) as emu:
        for i in range(1, members + 1):
            status = ("cleaned" if i % 50 == 0 else "unsubscribed" if i % 12 == 0
                      else "subscribed")
            emu.seed_member(f"person{i}@example.org", status,
                            merge_fields={"FNAME": f"First{i}"})
        emu.set_latency(LATENCY_MS)
        print(emu.base_url, flush=True)
        while True:
            time.sleep(3600)


def child_run(kind: str, database_url: str, base_url: str) -> None:
    from syncd.context import AppContext
    from syncd.esp.mailchimp import mailchimp_client
    from syncd.sync.audience_audit import run_audit
    from syncd.sync.audience_pull import run_pull

    ctx = AppContext.open(_settings(database_url, base_url))
    started, cpu = time.perf_counter(), time.process_time()
    result: dict[str, Any]
    if kind == "pull":
        report = run_pull(ctx)
        result = {"seen": report.seen, "matched": report.matched,
                  "recorded": report.recorded, "withdrawals": report.withdrawals_reported}
    else:
        client = mailchimp_client(ctx.settings)
        audit = run_audit(ctx, client)
        client.close()
        result = {"members": audit.members, "counts": dict(audit.counts)}
    result |= {"seconds": time.perf_counter() - started,
               "cpu_seconds": time.process_time() - cpu,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    ctx.close()
    print(json.dumps(result))


def _child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                         text=True, check=False, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _control(base_url: str, method: str, path: str) -> Any:
    url = base_url.removesuffix("/3.0") + "/_emulator" + path
    request = urllib.request.Request(url, method=method,
                                     data=b"{}" if method != "GET" else None)
    with urllib.request.urlopen(request, timeout=60) as answer:
        body = answer.read()
    return json.loads(body) if body else None


def measure(size: int, work: Path) -> dict[str, Any]:
    emu = subprocess.Popen([sys.executable, __file__, "--child", "emulator", str(size)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert emu.stdout is not None
        base_url = emu.stdout.readline().strip()
        db = work / f"audience-{size}.db"
        seed(db, size // MATCHED_SHARE)
        row: dict[str, Any] = {"members": size, "latency_ms": LATENCY_MS,
                               "call_floor": math.ceil(size / 1000) + 2}
        for kind in ("pull", "audit"):
            _control(base_url, "POST", "/stats/reset")
            result = _child(kind, f"sqlite:///{db}", base_url)
            calls = _control(base_url, "GET", "/stats")["calls"]
            result["read_calls"] = sum(n for route, n in calls.items() if route.startswith(
                "GET"))
            row[kind] = result
            print(f"{kind:5} N={size:>9,}: {result['read_calls']} calls (floor "
                  f"{row['call_floor']}), {result['seconds']:.1f} s, CPU "
                  f"{result['cpu_seconds']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB",
                  flush=True)
        return row
    finally:
        emu.terminate()
        emu.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k and 100k")
    parser.add_argument("--sizes", type=int, nargs="*", help="explicit sizes")
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "emulator":
            child_emulator(int(rest[0]))
        else:
            child_run(kind, rest[0], rest[1])
        return 0
    sizes = args.sizes or ([10_000, 100_000] if args.quick else [100_000, 1_000_000])
    with tempfile.TemporaryDirectory(prefix="syncd-audience-bench-") as tmp:
        rows = [measure(size, Path(tmp)) for size in sizes]
    doc = {"benchmark": "audience pull and audit", "rows": rows}
    if len(rows) >= 2:
        small, large = rows[0], rows[-1]
        doc["rss_ratio_pull"] = round(large["pull"]["peak_rss_mb"]
                                      / small["pull"]["peak_rss_mb"], 2)
        doc["rss_ratio_audit"] = round(large["audit"]["peak_rss_mb"]
                                       / small["audit"]["peak_rss_mb"], 2)
        print(f"peak RSS ratio {large['members']:,} vs {small['members']:,}: pull "
              f"{doc['rss_ratio_pull']}, audit {doc['rss_ratio_audit']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
