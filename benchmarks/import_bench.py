"""Import benchmark: `syncd import` of a generated JSONL file on SQLite and PostgreSQL, side
by side with plain `json` + `executemany` of the same rows, and peak RSS per size.

    python benchmarks/import_bench.py                       # 100k lines, both databases
    python benchmarks/import_bench.py --big                 # also 1M (peak RSS flat?)
    python benchmarks/import_bench.py --db sqlite --sizes 10000

Per database and size, each in a fresh database and its own process (peak RSS is that
process's alone, from wait4): (a) first import (`syncd import --json`, every line a
contact with a list and a double opt-in: two consent events); (b) the same file again,
which must change nothing (every line skipped by its content hash); (c) the reference:
a process that parses the same file with `json` and inserts the same rows (contact, membership, two
consent events) with one `executemany` per table into plain tables, no validation, no
ledger chain. Lines/s are from the wall time of each process (interpreter start
included, 1-3 s on a busy machine). Targets
(issue 16): >= 25,000 lines/s first import on SQLite, >= 15,000 on PostgreSQL,
>= 60,000 lines/s unchanged re-import, 1M in < 60 s, peak RSS flat from 100k to 1M.
Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

REFERENCE_TABLES = (
    "CREATE TABLE ref_contacts (email TEXT PRIMARY KEY, first_name TEXT, last_name TEXT, "
    "crm_id TEXT, attributes TEXT)",
    "CREATE TABLE ref_memberships (email TEXT, list TEXT)",
    "CREATE TABLE ref_consents (email TEXT, purpose TEXT, action TEXT, at TEXT, "
    "source TEXT, evidence TEXT)",
)


def child_reference(path: Path, url: str) -> None:
    """Plain json + executemany of the same rows: what the hardware does without syncd."""
    contacts, memberships, consents = [], [], []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            contacts.append((row["email"], row["first_name"], row["last_name"], row["crm_id"],
                             json.dumps(row["attributes"])))
            memberships.extend((row["email"], name) for name in row["lists"])
            consents.extend((row["email"], c["purpose"], c["action"], c["at"], c["source"],
                             json.dumps(c)) for c in row["consents"])
    inserts = (("ref_contacts", 5, contacts), ("ref_memberships", 2, memberships),
               ("ref_consents", 6, consents))
    if url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        for statement in REFERENCE_TABLES:
            conn.execute(statement)
        for table, width, rows in inserts:
            conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * width)})", rows)
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(url) as pg, pg.cursor() as cur:
        for statement in REFERENCE_TABLES:
            cur.execute(statement)
        for table, width, rows in inserts:
            cur.executemany(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * width)})", rows)


def run_size(tree: common.Tree, kind: str, path: Path, size: int, *,
             reimport: bool) -> dict[str, Any]:
    url = common.scratch_database(kind, tree.workdir, "syncd_bench_import")
    common.migrate(tree, url)
    first = common.import_file(tree, url, path)
    report = common.last_json(first.stdout)
    result: dict[str, Any] = {"lines": size, "file_mb": round(path.stat().st_size / 1e6, 1)}
    if reimport:
        again = common.import_file(tree, url, path)
        unchanged = common.last_json(again.stdout)
        result["unchanged_reimport"] = {
            "seconds": again.seconds, "lines_per_second": size / again.seconds,
            "cpu_seconds": again.cpu_seconds, "peak_rss_mb": again.peak_rss_mb,
            "changed_nothing": not unchanged.get("consents_added")
            and not unchanged.get("contacts_updated")
            and not unchanged.get("contacts_created")}
    common.drop_database(url)
    ref_url = common.scratch_database(kind, tree.workdir, "syncd_bench_import_ref")
    reference = common.run_child([sys.executable, __file__, "--child", str(path), ref_url],
                                 tree.env(ref_url))
    common.drop_database(ref_url)
    return {
        **result,
        "first_import": {"seconds": first.seconds, "lines_per_second": size / first.seconds,
                         "cpu_seconds": first.cpu_seconds, "peak_rss_mb": first.peak_rss_mb,
                         "contacts_created": report.get("contacts_created"),
                         "consents_added": report.get("consents_added")},
        "reference_json_executemany": {
            "seconds": reference.seconds, "lines_per_second": size / reference.seconds,
            "cpu_seconds": reference.cpu_seconds, "peak_rss_mb": reference.peak_rss_mb},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser_for(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--big", action="store_true", help="also 1,000,000 lines")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_reference(Path(args.child[0]), args.child[1])
        return {}
    sizes = sorted({*args.sizes, *([1_000_000] if args.big else [])})
    document: dict[str, Any] = {"benchmark": "import", "targets": {
        "sqlite_lines_per_second": 25_000, "postgresql_lines_per_second": 15_000,
        "unchanged_reimport_lines_per_second": 60_000, "one_million_lines_seconds": 60},
        "runs": {}}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-import-") as tmp:
        tree = common.Tree(args.tree.resolve(), Path(tmp))
        document.update(common.metadata(tree))
        for size in sizes:
            path = common.write_contacts(Path(tmp) / f"contacts-{size}.jsonl", size)
            for kind in common.databases(args.db):
                document["runs"].setdefault(kind, []).append(run_size(
                    tree, kind, path, size, reimport=True))
            path.unlink()
    rows = []
    for kind, runs in document["runs"].items():
        for run in runs:
            for label, key in (("syncd import", "first_import"),
                               ("unchanged re-import", "unchanged_reimport"),
                               ("json + executemany (reference)", "reference_json_executemany")):
                if key not in run:
                    continue
                r = run[key]
                rows.append((kind, run["lines"], label, f"{r['lines_per_second']:,.0f}",
                             f"{r['seconds']:.1f}", f"{r['peak_rss_mb']:.0f}"))
    common.report(document, args.out, "import",
                  ("db", "lines", "what", "lines/s", "s", "peak RSS MB"), rows)
    return document


def headline(document: dict[str, Any]) -> dict[str, float]:
    figures = {}
    for kind, runs in document["runs"].items():
        run = runs[0]
        figures[f"import {kind} lines/s"] = run["first_import"]["lines_per_second"]
        figures[f"import {kind} unchanged re-import lines/s"] = run["unchanged_reimport"][
            "lines_per_second"]
        figures[f"import {kind} json+executemany lines/s (reference)"] = run[
            "reference_json_executemany"]["lines_per_second"]
        figures[f"import {kind} peak RSS MB"] = run["first_import"]["peak_rss_mb"]
    return figures


if __name__ == "__main__":
    main()
