"""Where a first push's CPU goes, stage by stage: each stage of `syncd sync`'s push run
alone in one process, its thread CPU (time.thread_time, the min of 3 repeats) per contact.

    python benchmarks/push_stages.py --baseline ../base --candidate . --db both

Per tree and database: N confirmed contacts imported into a fresh database, the emulator
at 0 ms in its own process; then in a child of that tree: the candidate read
(source.iter_candidates), plan_contact, the write-ahead attempt markers (500 a call), the
batch call through the real client (MailchimpClient.push_batch, 500 a call), the
outcomes (push._added) and the checkpoint (500 a call). Thread CPU counts the child only
(not the emulator, not the PostgreSQL server), so it moves less with the machine's load
than wall time; the trees alternate round by round (A B, B A). Results:
benchmarks/results/push-stages.json; figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

STAGES = ("read", "plan", "attempts", "batch_call", "outcomes", "checkpoint")
CHILD = '''
import json, os, sys, time, urllib.request
from syncd.clock import utcnow
from syncd.config.loading import load_settings
from syncd.context import AppContext
from syncd.esp.mailchimp import mailchimp_client
from syncd.esp.protocol import NewMember
from syncd.sync import source
from syncd.sync.plan import PlanConfig, plan_contact
from syncd.sync.push import _added
try:  # the checkpoint's writes moved out of push_state.py on 2026-12-07
    from syncd.store import push_checkpoint as writes
except ImportError:
    from syncd.store import push_state as writes
ctx = AppContext.open(load_settings())
target = ctx.settings.target()
cfg = PlanConfig.for_target(target, ctx.settings)
now, audience, n = utcnow(), target.audience_id, int(sys.argv[1])
client = mailchimp_client(ctx.settings, audience)
reset = os.environ["SYNCD_MAILCHIMP_BASE_URL"].removesuffix("/3.0") + "/_emulator/reset"
found = {}
def stage(name, fn):
    best = None
    for _ in range(3):
        started = time.thread_time()
        out = fn()
        spent = time.thread_time() - started
        best = spent if best is None else min(best, spent)
    found[name] = round(best / n * 1e6, 2)
    return out
def batches(items):
    return [items[i:i + 500] for i in range(0, len(items), 500)]
cands = stage("read", lambda: [c for chunk in source.iter_candidates(
    ctx.engine, audience, ctx.keyring, chunk_size=2000, purpose_lists=cfg.tag_lists,
    purchases=False) for c in chunk])
changes = stage("plan", lambda: [plan_contact(c.facts, c.known, cfg, now) for c in cands])
stage("attempts", lambda: [writes.mark_attempts(ctx.engine, audience, [
    (c.contact_id, c.fingerprint or "") for c in part]) for part in batches(changes)])
def call():
    urllib.request.urlopen(urllib.request.Request(reset, method="POST", data=b"{}")).read()
    return [r for part in batches(changes)
            for r in client.push_batch([NewMember(c.data, c.status) for c in part])]
assert all(r.outcome == "created" for r in stage("batch_call", call))
outs = stage("outcomes", lambda: [_added(c, "subscribed", now) for c in changes])
stage("checkpoint", lambda: [writes.settle(ctx.engine, audience, [o.settlement for o in part])
                             for part in batches(outs)])
print(json.dumps(found))
'''


def measure(tree: common.Tree, kind: str, contacts: int, emulator: common.Emulator,
            seed: Path) -> dict[str, float]:
    url = common.scratch_database(kind, tree.workdir, f"syncd_bench_stages_{kind}")
    common.migrate(tree, url)
    common.import_file(tree, url, seed)
    env = tree.env(url, mailchimp_api_key=common.API_KEY,
                   mailchimp_audience_id=common.LIST_ID, mailchimp_base_url=emulator.base_url)
    done = subprocess.run([sys.executable, "-c", CHILD, str(contacts)], env=env,
                          cwd=tree.workdir, capture_output=True, text=True, timeout=1800,
                          check=False)
    common.drop_database(url)
    if done.returncode != 0:
        raise SystemExit(f"stages child exited {done.returncode}:\n{done.stderr[-3000:]}")
    found: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--candidate", type=Path, required=True)
    parser.add_argument("--db", choices=[*common.DATABASES, "both"], default="both")
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=common.RESULTS / "push-stages.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-stages-") as tmp:
        trees = {}
        for label, path in (("baseline", args.baseline), ("candidate", args.candidate)):
            (Path(tmp) / label).mkdir()
            trees[label] = common.Tree(path.resolve(), Path(tmp) / label)
        document: dict[str, Any] = {"benchmark": "push-stages", "contacts": args.contacts,
                                    "unit": "us thread CPU per contact",
                                    **common.metadata(trees["candidate"]), "tree": "candidate"}
        seed = common.write_contacts(Path(tmp) / "push.jsonl", args.contacts)
        emulator = common.Emulator(trees["candidate"], latency_ms=0)
        runs: dict[str, dict[str, list[dict[str, float]]]] = {}
        try:
            for kind in common.databases(args.db):
                for n in range(args.rounds):
                    order = list(trees.items()) if n % 2 == 0 else list(trees.items())[::-1]
                    for label, tree in order:
                        runs.setdefault(kind, {}).setdefault(label, []).append(
                            measure(tree, kind, args.contacts, emulator, seed))
        finally:
            emulator.stop()
    document["commits"] = {label: tree.commit() for label, tree in trees.items()}
    rows = []
    for kind, by_tree in runs.items():
        document[kind] = {label: {s: median(r[s] for r in rounds) for s in STAGES}
                          for label, rounds in by_tree.items()}
        for s in (*STAGES, "sum"):
            a, b = (sum(document[kind][t].values()) if s == "sum" else document[kind][t][s]
                    for t in ("baseline", "candidate"))
            rows.append((kind, s, f"{a:.1f}", f"{b:.1f}", f"{b / a:.2f}"))
    common.write_results("push-stages", document, args.out)
    common.print_table(f"push stages, us thread CPU per contact (load "
                       f"{document['load_average_at_start']})",
                       ("db", "stage", "baseline", "candidate", "B/A"), rows)


if __name__ == "__main__":
    main()
