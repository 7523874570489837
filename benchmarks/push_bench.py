"""Push benchmark: `syncd sync` against the Mailchimp emulator at 20 ms per call, side by
side with the batched calls alone (the official client, no database, no policy) and the
naive per-member loop; then the no-change run and a run after 100 changes.

    python benchmarks/push_bench.py                  # 20k contacts, both databases
    python benchmarks/push_bench.py --big            # also 200k (peak RSS, contacts/s)
    python benchmarks/push_bench.py --db sqlite --contacts 5000

Per database and size, every measurement in a fresh process, the emulator in its own:
(a) first push of N confirmed contacts (`syncd sync --json`): the run's own duration
    (its report), contacts/s, CPU seconds and peak RSS of the syncd process, write calls;
(b) reference in the same run: the same N members through the official client's batch
    call (500 per call, 10 threads: Mailchimp's connection limit), contacts/s; and the
    naive loop (one PUT per member, sequential) on a sample, extrapolated;
(c) no-change run over the same N: duration and write calls (0 expected);
(d) after re-importing 100 contacts with a new first name: duration, write calls, and
    members updated (100 expected).
Targets (issue 16): >= 25,000 contacts/s end to end, <= 40 us CPU per contact; a
no-change run that reads nothing but a cursor. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

LATENCY_MS = 20.0


def child_batched(base_url: str, count: int) -> None:
    """Reference: the batch calls alone with the official client, 500 members a call,
    10 at once; members built in memory (no database, no policy, no checkpoint)."""
    import mailchimp_marketing

    def client() -> Any:
        c = mailchimp_marketing.Client()
        c.set_config({"api_key": common.API_KEY})
        c.api_client.host = base_url
        return c

    clients = [client() for _ in range(10)]

    def call(start: int) -> None:
        members = [{"email_address": f"batched{i}@example.org", "status": "subscribed",
                    "merge_fields": {"FNAME": f"First{i}", "LNAME": f"Last{i}"}}
                   for i in range(start, min(start + 500, count))]
        clients[(start // 500) % 10].lists.batch_list_members(
            common.LIST_ID, {"members": members, "update_existing": True})

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(call, range(0, count, 500)))
    print(json.dumps({"seconds": time.perf_counter() - started, "members": count}))


def child_naive(base_url: str, sample: int) -> None:
    """What most plugins do: the stock client, one PUT per member, in a loop."""
    import mailchimp_marketing

    client = mailchimp_marketing.Client()
    client.set_config({"api_key": common.API_KEY})
    client.api_client.host = base_url
    started = time.perf_counter()
    for i in range(sample):
        address = f"naive{i}@example.org"
        client.lists.set_list_member(common.LIST_ID, hashlib.md5(address.encode()).hexdigest(),
                                     {"email_address": address, "status_if_new": "subscribed"})
    print(json.dumps({"seconds": time.perf_counter() - started, "members": sample}))


def _sync(tree: common.Tree, url: str, emulator: common.Emulator) -> dict[str, Any]:
    env = tree.env(url, mailchimp_api_key=common.API_KEY, mailchimp_audience_id=common.LIST_ID,
                   mailchimp_base_url=emulator.base_url)
    child = common.run_syncd(tree, env, "sync", "--json")
    report = common.last_json(child.stdout)
    return {"duration_seconds": report["duration_seconds"], "wall_seconds": child.seconds,
            "cpu_seconds": child.cpu_seconds, "peak_rss_mb": child.peak_rss_mb,
            "considered": report["considered"], "added": report["added"],
            "updated": report["updated"], "write_calls": report["write_calls"],
            "failed": report["failed"], "parked": report["parked"]}


def _reference(kind: str, emulator: common.Emulator, count: int) -> dict[str, Any]:
    emulator.call("POST", "/reset")
    out = common.run_child([sys.executable, __file__, "--child", kind, emulator.base_url,
                            str(count)], common.Tree(common.ROOT, Path("/")).env("sqlite://"))
    doc: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    doc["cpu_seconds"] = out.cpu_seconds
    doc["contacts_per_second"] = doc["members"] / doc["seconds"]
    return doc


def run_size(tree: common.Tree, kind: str, size: int, emulator: common.Emulator,
             changes: bool) -> dict[str, Any]:
    seed = common.write_contacts(tree.workdir / f"push-{size}.jsonl", size)
    url = common.scratch_database(kind, tree.workdir, "syncd_bench_push")
    common.migrate(tree, url)
    common.import_file(tree, url, seed)
    seed.unlink()
    emulator.call("POST", "/reset")
    first = _sync(tree, url, emulator)
    first["contacts_per_second"] = first["added"] / first["duration_seconds"]
    first["cpu_us_per_contact"] = first["cpu_seconds"] / max(1, first["added"]) * 1e6
    result: dict[str, Any] = {"contacts": size, "first_push": first,
                              "emulator": emulator.call("GET", "/stats")}
    if changes:
        result["no_change_run"] = again = _sync(tree, url, emulator)
        # The no-change run pays the same start-up (interpreter, imports, settings, the
        # scan): the difference is what pushing the contacts cost.
        first["marginal_cpu_us_per_contact"] = (first["cpu_seconds"] - again["cpu_seconds"]
                                                ) / max(1, first["added"]) * 1e6
        changed = tree.workdir / "changed.jsonl"
        changed.write_text("".join(common.contact_line(i, first_name=f"Changed{i}")
                                   for i in range(1, 101)), encoding="utf-8")
        common.import_file(tree, url, changed)
        result["after_100_changes"] = _sync(tree, url, emulator)
    common.drop_database(url)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser_for(__doc__)
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--big", action="store_true", help="also 10 x contacts")
    parser.add_argument("--naive-sample", type=int, default=100)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="smaller: a first look")
    args = parser.parse_args(argv)
    if args.quick:
        args.contacts = 5000
    if args.child:
        (child_batched if args.child[0] == "batched" else child_naive)(
            args.child[1], int(args.child[2]))
        return {}
    sizes = [args.contacts, *([10 * args.contacts] if args.big else [])]
    document: dict[str, Any] = {"benchmark": "push", "latency_ms": LATENCY_MS, "targets": {
        "contacts_per_second": 25_000, "cpu_us_per_contact": 40}, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-push-") as tmp:
        tree = common.Tree(args.tree.resolve(), Path(tmp))
        document.update(common.metadata(tree))
        emulator = common.Emulator(tree, latency_ms=LATENCY_MS)
        try:
            document["reference_batched_official_client"] = _reference(
                "batched", emulator, args.contacts)
            naive = _reference("naive", emulator, args.naive_sample)
            naive["extrapolated_seconds_for_contacts"] = naive["seconds"] / naive[
                "members"] * args.contacts
            document["reference_naive_loop"] = naive
            for kind in common.databases(args.db):
                document["runs"][kind] = [run_size(tree, kind, size, emulator, size == sizes[0])
                                          for size in sizes]
        finally:
            emulator.stop()
    ref, naive = document["reference_batched_official_client"], document["reference_naive_loop"]
    rows: list[tuple[Any, ...]] = [
        ("-", args.contacts, "batched calls alone (reference)",
         f"{ref['contacts_per_second']:,.0f}", f"{ref['seconds']:.2f}", "-", "-", "-"),
        ("-", naive["members"], "naive loop (reference)",
         f"{naive['contacts_per_second']:,.0f}", f"{naive['seconds']:.2f}", "-", "-", "-")]
    for kind, runs in document["runs"].items():
        for run in runs:
            first = run["first_push"]
            marginal = first.get("marginal_cpu_us_per_contact", float("nan"))
            rows.append((kind, run["contacts"], "first push",
                         f"{first['contacts_per_second']:,.0f}",
                         f"{first['duration_seconds']:.2f}",
                         f"{first['cpu_us_per_contact']:.0f} ({marginal:.0f})",
                         first["write_calls"], f"{first['peak_rss_mb']:.0f}"))
            for label in ("no_change_run", "after_100_changes"):
                if label in run:
                    r = run[label]
                    rows.append((kind, run["contacts"], label.replace("_", " "),
                                 f"{r['updated']} updated", f"{r['duration_seconds']:.3f}", "-",
                                 r["write_calls"], f"{r['peak_rss_mb']:.0f}"))
    common.report(document, args.out, f"push at {LATENCY_MS:g} ms per call",
                  ("db", "contacts", "what", "contacts/s", "run s",
                   "CPU us/contact (marginal)", "write calls", "RSS MB"), rows)
    return document


def headline(document: dict[str, Any]) -> dict[str, float]:
    figures = {"push batched calls alone contacts/s (reference)":
               document["reference_batched_official_client"]["contacts_per_second"]}
    for kind, runs in document["runs"].items():
        run = runs[0]
        figures[f"push {kind} contacts/s"] = run["first_push"]["contacts_per_second"]
        figures[f"push {kind} CPU us/contact"] = run["first_push"]["cpu_us_per_contact"]
        figures[f"push {kind} marginal CPU us/contact"] = run["first_push"][
            "marginal_cpu_us_per_contact"]
        figures[f"sync {kind} no-change run s"] = run["no_change_run"]["duration_seconds"]
        figures[f"sync {kind} after 100 changes s"] = run["after_100_changes"]["duration_seconds"]
    return figures


if __name__ == "__main__":
    main()
