"""Ledger chain benchmark: what linking costs one consent event, side by side in one run.

    python benchmarks/ledger_chain_bench.py                 # both databases, 2,000 events
    python benchmarks/ledger_chain_bench.py --db sqlite --events 500

For each database, alternating in rounds so both see the same machine load:
- chained: `store.ledger.append` of one row in its own transaction (lock the contact and the chain
  head, link, insert, move the head): what every writer does now;
- plain: the same row inserted with the INSERT ... ON CONFLICT DO NOTHING the ledger used
  before the chain (its chain columns filled with a constant), in its own transaction.
Reported: median microseconds per transaction and the ratio; then `verify` over the whole
ledger (events per second). Figures are reported, never asserted; results go to
benchmarks/results/ledger_chain.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "syncd_bench_chain"
ROUND = 100


def _database(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'chain.db'}"
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_DATABASE


def run(kind: str, events: int) -> dict[str, Any]:
    from sqlalchemy import insert

    from syncd.consent.chain_verify import verify
    from syncd.consent.ledger import ConsentRecord, event_row
    from syncd.consent.policy import Action
    from syncd.db import make_engine, session_factory, transaction
    from syncd.migrate import upgrade
    from syncd.schema import ConsentEvent, Contact
    from syncd.store import ledger as chain_ledger
    from syncd.store.dialect import insert_ignoring_duplicates

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(_database(kind, Path(tmp)))
        upgrade(engine)
        sessions = session_factory(engine)
        now = datetime.now(UTC)
        with transaction(sessions) as session:
            session.execute(insert(Contact), [
                {"id": i, "email_key": f"p{i}@example.org", "email_display": f"p{i}@example.org",
                 "attributes": {}, "is_customer": False, "created_at": now, "updated_at": now,
                 "revision": 1} for i in range(1, 101)])
        timings: dict[str, list[float]] = {"chained": [], "plain": []}
        made = 0
        while made < events:
            for way in ("chained", "plain"):
                for _ in range(ROUND):
                    made += 1
                    row = event_row(1 + made % 100, f"p{1 + made % 100}@example.org",
                                    ConsentRecord(purpose="newsletter", action=Action.GIVEN,
                                                  occurred_at=now, source="bench"),
                                    dedupe_salt=f"{way}{made}")
                    started = time.perf_counter()
                    with transaction(sessions) as session:
                        if way == "chained":
                            chain_ledger.append(session, [row])
                        else:
                            row |= {"chain_seq": -made, "chain_prev": "0" * 64,
                                    "chain_hash": "0" * 64}
                            insert_ignoring_duplicates(session, ConsentEvent.__table__, [row])
                    timings[way].append((time.perf_counter() - started) * 1e6)
        # The plain rows sit at negative positions, which the walk (from position 1) skips.
        started = time.perf_counter()
        with sessions() as session:
            walked = verify(session)
        verify_seconds = time.perf_counter() - started
        engine.dispose()
    chained = statistics.median(timings["chained"])
    plain = statistics.median(timings["plain"])
    return {"database": kind, "transactions_each": len(timings["chained"]),
            "chained_median_us": round(chained, 1), "plain_median_us": round(plain, 1),
            "ratio": round(chained / plain, 2),
            "verify_ok": walked.ok, "verify_items": walked.events + walked.tombstones,
            "verify_items_per_second": round((walked.events + walked.tombstones)
                                             / verify_seconds)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = [run(kind, min(args.events, 20_000)) for kind in kinds]
    for result in results:
        print(json.dumps(result))
    out = ROOT / "benchmarks" / "results" / "ledger_chain.json"
    out.write_text(json.dumps({"at": datetime.now(UTC).isoformat(), "results": results},
                              indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
