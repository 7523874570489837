"""Import benchmark: median wall time and peak RSS of `syncd import` for 100k and 1M lines.

Each run imports a generated JSONL file (every line a contact with a list and a double
opt-in: two consent events) into a fresh database in its own process, so the peak RSS
is that import's alone. The figures are reported, never asserted.

    python benchmarks/import_bench.py                       # 100k and 1M on SQLite
    python benchmarks/import_bench.py --sizes 10000 --repeat 3
    python benchmarks/import_bench.py --database-url postgresql://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LISTS = ("newsletter-nl", "newsletter-en", "events")


def generate(path: Path, lines: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(lines):
            day = 1 + i % 28
            out.write(json.dumps({
                "email": f"person{i}@example.org", "first_name": f"First{i}",
                "last_name": f"Last{i}", "crm_id": f"C-{i}", "lists": [LISTS[i % 3]],
                "attributes": {"city": "Delft"},
                "consents": [
                    {"purpose": "newsletter", "action": "given",
                     "at": f"2026-03-{day:02d}T09:00:00Z", "source": "web_form",
                     "form_url": "https://example.org/signup", "text_version": "v3",
                     "privacy_notice_version": "2026-01", "ip": "192.0.2.1"},
                    {"purpose": "newsletter", "action": "confirmed",
                     "at": f"2026-03-{day:02d}T09:30:00Z", "source": "web_form",
                     "confirmation_token_hash": f"{i:064x}"},
                ],
            }) + "\n")


def child(path: Path, database_url: str, reimport: bool) -> None:
    """One import in this process; prints seconds and peak RSS as JSON."""
    from syncd.config import ListSettings, load_settings
    from syncd.context import AppContext
    from syncd.crm.importer import import_file
    from syncd.migrate import upgrade

    settings = load_settings(None, database_url=database_url,
                             pseudonym_key="benchmark-key-not-for-production",
                             lists={name: ListSettings(purpose="events" if name == "events"
                                                       else "newsletter") for name in LISTS})
    ctx = AppContext.open(settings)
    upgrade(ctx.engine)
    ctx.sync_lists()
    started = time.perf_counter()
    report = import_file(ctx, path)
    seconds = time.perf_counter() - started
    reimport_seconds = float("nan")
    if reimport:
        started = time.perf_counter()
        again = import_file(ctx, path)
        reimport_seconds = time.perf_counter() - started
        if again.consents_added or again.contacts_updated:
            raise SystemExit("re-importing the same file changed something")
    ctx.close()
    if not report.applied or report.invalid:
        raise SystemExit("benchmark import did not import cleanly or re-import added events")
    print(json.dumps({"seconds": seconds, "reimport_seconds": reimport_seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _fresh_database(base_url: str | None, workdir: Path, run: int) -> str:
    if base_url is None:
        return f"sqlite:///{workdir / f'bench-{run}.db'}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from syncd.db import normalise_url

    url = make_url(normalise_url(base_url))
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    return url.render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median)")
    parser.add_argument("--database-url", help="PostgreSQL URL (recreated per run); "
                                               "default: a fresh SQLite file per run")
    parser.add_argument("--no-reimport", action="store_true",
                        help="skip timing a second, no-op import of the same file")
    parser.add_argument("--child", nargs=3, metavar=("FILE", "URL", "REIMPORT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], args.child[2] == "yes")
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="syncd-import-bench-") as tmp:
        workdir = Path(tmp)
        for size in args.sizes:
            path = workdir / f"contacts-{size}.jsonl"
            generate(path, size)
            runs = []
            for run in range(args.repeat):
                url = _fresh_database(args.database_url, workdir, run)
                done = subprocess.run([sys.executable, __file__, "--child", str(path), url,
                                       "no" if args.no_reimport else "yes"],
                                      check=True, capture_output=True, text=True)
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
                Path(workdir / f"bench-{run}.db").unlink(missing_ok=True)
            rows.append((size, path.stat().st_size / 1e6, runs))
            path.unlink()
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"syncd import on {database}, {args.repeat} run(s) per size (median; peak RSS max)")
    print(f"{'lines':>10} {'file MB':>8} {'import s':>9} {'lines/s':>9} {'re-import s':>12} "
          f"{'peak RSS MB':>12}")
    for size, megabytes, runs in rows:
        seconds = statistics.median(r["seconds"] for r in runs)
        again = statistics.median(r["reimport_seconds"] for r in runs)
        rss = max(r["peak_rss_mb"] for r in runs)
        print(f"{size:>10} {megabytes:>8.1f} {seconds:>9.1f} {size / seconds:>9.0f} "
              f"{again:>12.1f} {rss:>12.1f}")


if __name__ == "__main__":
    main()
