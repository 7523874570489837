"""Webhook cost in instructions, not seconds: `syncd serve` under valgrind's callgrind,
which counts the instructions syncd's process executed (all its threads), the same
figure whatever else the machine is doing. The wall-clock webhook benchmark's CPU per
webhook moved by a third between two runs of one tree on this 2-core machine; this count
moved by at most 2.5 % across three runs of one tree (the service's timers and thread
hand-offs vary a little), so a ratio within about 0.975-1.025 is noise.

    python benchmarks/webhook_instructions.py --baseline ../base --candidate .

Per tree and database: N contacts imported (double opt-in, one newsletter list each);
then the real service twice, each on a fresh copy of that database, answering `--few`
and then `--many` distinct unsubscribes sent one after another over one keep-alive
connection (each its own batch: the 200/s case, not the closed loop's batching), each
answered only after its purge committed; then SIGTERM. The difference over the
difference in deliveries is the marginal cost of one webhook: start-up, the start-up
sync and the shutdown cancel out. The PostgreSQL server is another process: not counted,
as the wall-clock benchmark's server CPU does not count it either.

Both trees run against the same emulator process (the candidate's), in one run; results:
benchmarks/results/webhook-instructions.json. Slow (callgrind runs Python ~50x slower),
so the counts are small; figures are reported, never asserted. Each answered
unsubscribe is checked applied in the database afterwards (webhook_bench.verify).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import http_load
import push_instructions
import webhook_bench

START_SECONDS = 600  # start-up and the start-up sync, under callgrind
TIMEOUT_SECONDS = 1500  # every child bounded in time
FIRED = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


def _serve(tree: common.Tree, url: str, emulator: common.Emulator, out: Path,
           deliveries: int) -> int:
    """Instructions of one `syncd serve` under callgrind answering `deliveries` unsubscribes."""
    proc, port = webhook_bench.start_service(
        tree, url, emulator, prefix=("valgrind", "--tool=callgrind",
                                     f"--callgrind-out-file={out}"),
        start_seconds=START_SECONDS, webhook_deadline_seconds="9")
    try:
        requests = [webhook_bench.unsubscribe(i, FIRED) for i in range(1, deliveries + 1)]
        summary, tally = asyncio.run(http_load.closed_loop(port, requests, 1, TIMEOUT_SECONDS))
        if len(tally.answered_ok) != deliveries:
            raise SystemExit(f"{len(tally.answered_ok)} of {deliveries} answered 2xx: "
                             f"{summary['statuses']}")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=TIMEOUT_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    check = webhook_bench.verify(url, deliveries)
    if not check["every_answered_event_applied"]:
        raise SystemExit(f"a 2xx-answered unsubscribe is not applied: {check}")
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(encoding="utf-8"), re.M)
    if match is None:
        raise SystemExit(f"no instruction total in {out}")
    return int(match.group(1))


def measure(tree: common.Tree, kind: str, emulator: common.Emulator, few: int,
            many: int) -> dict[str, Any]:
    push_instructions.compile_ahead(tree)
    seed = common.write_contacts(tree.workdir / "webhook.jsonl", many)
    template = common.scratch_database(kind, tree.workdir, "syncd_bench_wh_instr_seed")
    common.migrate(tree, template)
    common.import_file(tree, template, seed)
    counts = {}
    for deliveries in (few, many):
        emulator.call("POST", "/reset")
        url = common.scratch_database(kind, tree.workdir, "syncd_bench_wh_instr",
                                      template=template)
        counts[deliveries] = _serve(tree, url, emulator,
                                    tree.workdir / f"{kind}-{deliveries}.out", deliveries)
        common.drop_database(url)
    common.drop_database(template)
    return {"deliveries": [few, many], "instructions": [counts[few], counts[many]],
            "marginal_instructions_per_webhook": (counts[many] - counts[few]) / (many - few),
            "commit": tree.commit()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--candidate", type=Path, required=True)
    parser.add_argument("--db", choices=(*common.DATABASES, "both"), default="both")
    parser.add_argument("--few", type=int, default=100)
    parser.add_argument("--many", type=int, default=300)
    parser.add_argument("--out", type=Path,
                        default=common.RESULTS / "webhook-instructions.json")
    args = parser.parse_args()
    if not 0 < args.few < args.many:
        raise SystemExit("--few must be at least 1 and less than --many")
    document: dict[str, Any] = {"benchmark": "webhook-instructions",
                                "bytecode": "compiled ahead (compileall)",
                                "sending": "one client, one after another", "runs": {}}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-wh-instr-") as tmp:
        trees = {}
        for label, path in (("baseline", args.baseline), ("candidate", args.candidate)):
            workdir = Path(tmp) / label
            workdir.mkdir(parents=True)
            trees[label] = common.Tree(path.resolve(), workdir)
        document.update(common.metadata(trees["candidate"]))
        document["tree"] = "candidate"  # named by label and commit, never by its path
        emulator = common.Emulator(trees["candidate"], latency_ms=0)
        try:
            for kind in common.databases(args.db):
                run: dict[str, Any] = {}
                for label, tree in trees.items():
                    print(f"{kind} {label}: {tree.commit()}", flush=True)
                    run[label] = measure(tree, kind, emulator, args.few, args.many)
                key = "marginal_instructions_per_webhook"
                run["ratio " + key] = run["candidate"][key] / run["baseline"][key]
                document["runs"][kind] = run
                print(f"{kind:10} {key}: {run['baseline'][key]:>12,.0f} "
                      f"{run['candidate'][key]:>12,.0f}  B/A {run['ratio ' + key]:.3f}",
                      flush=True)
        finally:
            emulator.stop()
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
