"""The sync's candidate read on its own: what a run reads to find its work, over N contacts
all settled (the no-change run), then after 100 of them changed.

    python benchmarks/cursor_read_bench.py --contacts 20000 --db both
    python benchmarks/cursor_read_bench.py --tree /path/to/other/tree --out x.json

Per database: N contacts imported (`syncd import`), each marked settled for the audience
in SQL (as a complete first sync leaves them), then in a child process of the tree under
test: one complete run's bookkeeping where the tree has a change cursor
(syncd.store.candidates.changes / complete), and the read timed (median of 7): the
cursor's floor and changed ids where the tree has them, then every chunk of candidates.
The same after 100 contacts' revisions are bumped. Figures are reported, never asserted.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

REPEAT = 7
SETTLE = ("INSERT INTO push_state (contact_id, audience_id, settled_revision, updated_at) "
          "SELECT id, '{list_id}', revision, CURRENT_TIMESTAMP FROM contacts")


def child(database_url: str) -> None:
    """In the tree under test: the read, timed."""
    from syncd.config.loading import load_settings
    from syncd.context import AppContext
    from syncd.store import candidates, contacts

    ctx = AppContext.open(load_settings(database_url=database_url))
    cursor = hasattr(candidates, "changes")

    def read() -> tuple[float, int]:
        started = time.perf_counter()
        ids = None
        if cursor:
            with ctx.sessions.begin() as session:
                ids = candidates.changes(session, common.LIST_ID).ids
        kwargs: dict[str, Any] = {"ids": ids} if cursor else {}
        rows = sum(len(chunk.rows) for chunk in candidates.chunks(
            ctx.engine, common.LIST_ID, ctx.keyring, chunk_size=2000,
            purpose_lists=("newsletter-nl", "newsletter-en"), **kwargs))
        return time.perf_counter() - started, rows

    def timed() -> dict[str, Any]:
        runs = [read() for _ in range(REPEAT)]
        return {"median_ms": statistics.median(t for t, _ in runs) * 1000,
                "rows": runs[0][1], "ms": [round(t * 1000, 2) for t, _ in runs]}

    if cursor:  # the first complete run stores the cursor
        with ctx.sessions.begin() as session:
            candidates.complete(session, common.LIST_ID,
                                candidates.changes(session, common.LIST_ID))
    result: dict[str, Any] = {"cursor": cursor, "no_change": timed()}
    with ctx.sessions.begin() as session:
        contacts.bump_revisions(session, range(1, 101))
    result["after_100_changes"] = timed()
    ctx.close()
    print(json.dumps(result))


def run_size(tree: common.Tree, kind: str, size: int) -> dict[str, Any]:
    seed = common.write_contacts(tree.workdir / f"read-{size}.jsonl", size)
    url = common.scratch_database(kind, tree.workdir, "syncd_bench_read")
    common.migrate(tree, url)
    common.import_file(tree, url, seed)
    seed.unlink()
    _execute(url, SETTLE.format(list_id=common.LIST_ID))
    out = common.run_child([sys.executable, __file__, "--child", url], tree.env(url))
    common.drop_database(url)
    doc: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return {"contacts": size, **doc}


def _execute(url: str, statement: str) -> None:
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(statement)
        return
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(statement)  # type: ignore[arg-type]  # constant text
        conn.execute("ANALYZE")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.parser_for(__doc__)
    parser.add_argument("--contacts", type=int, nargs="+", default=[20_000])
    parser.add_argument("--child", nargs=1)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0])
        return {}
    document: dict[str, Any] = {"benchmark": "cursor_read", "repeat": REPEAT, "runs": {}}
    rows = []
    with tempfile.TemporaryDirectory(prefix="syncd-bench-read-") as tmp:
        tree = common.Tree(args.tree.resolve(), Path(tmp))
        document.update(common.metadata(tree))
        for kind in common.databases(args.db):
            for size in args.contacts:
                result = run_size(tree, kind, size)
                document["runs"].setdefault(kind, []).append(result)
                for label in ("no_change", "after_100_changes"):
                    rows.append((kind, size, label, f"{result[label]['median_ms']:.2f}",
                                 result[label]["rows"], result["cursor"]))
    common.report(document, args.out, "candidate read", (
        "db", "contacts", "read", "median ms", "candidate rows", "cursor"), rows)
    return document


if __name__ == "__main__":
    main()
