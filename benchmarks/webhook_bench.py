"""Webhook benchmark: Mailchimp unsubscribes through a real uvicorn on 127.0.0.1 into
SQLite and PostgreSQL, each purge committed before the answer.

    python benchmarks/webhook_bench.py              # both databases
    python benchmarks/webhook_bench.py --db sqlite  # one
    python benchmarks/webhook_bench.py --quick      # shorter phases

The server is the service app (`syncd.service.app.create_app`, which mounts the webhook
router), one uvicorn worker in its own process, logging at info to /dev/null. The load
comes from this process, an asyncio HTTP/1.1 client with keep-alive connections.

(a) open loop: unsubscribes paced at 200 requests/s (each sent at its scheduled moment,
    whatever the previous ones do); latency from the scheduled moment to the answer,
    which comes only after the purge committed: p50/p90/p99/max.
(b) closed loop: N clients, each sending its next unsubscribe when the last is
    answered: sustained webhooks/s.
(c) burst: 1,000 deliveries at once, each on its own connection: 800 distinct
    unsubscribes and 200 duplicates of them; then the database is checked: every
    distinct event stored and applied exactly once (one inbox row, one withdrawal, one
    suppression, off the lists), every duplicate answered "duplicate".
Every answered event of (a) and (b) is checked in the database too (zero lost).
Targets: p99 < 25 ms at 200/s; >= 500/s sustained on 2 cores. Figures are reported,
never asserted; results go to benchmarks/results/webhooks.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "webhooks.json"
PSEUDONYM_KEY = "benchmark-key-not-for-production"
SECRET = "benchmark-webhook-secret-0123456789"
LIST_ID = "f1243a3b12"
PG_ADMIN = os.environ.get("SYNCD_TEST_POSTGRES_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "syncd_bench_webhooks"
LISTS = {"newsletter-nl": "newsletter", "newsletter-en": "newsletter", "events": "events"}


def _settings(database_url: str) -> Any:
    from syncd.config import ListSettings, load_settings

    return load_settings(None, database_url=database_url, pseudonym_key=PSEUDONYM_KEY,
                         mailchimp_audience_id=LIST_ID, webhook_secrets=[SECRET],
                         log_level="info", log_format="json",
                         lists={n: ListSettings(purpose=p) for n, p in LISTS.items()})


def email(i: int) -> str:
    return f"person{i}@example.org"


# -- database -------------------------------------------------------------------------


def prepare(kind: str, workdir: Path, count: int) -> str:
    """A migrated, seeded database: `count` contacts with a double opt-in and two
    newsletter lists each (bulk inserts)."""
    from sqlalchemy import create_engine, insert, select, text
    from sqlalchemy.orm import Session

    from syncd.context import AppContext
    from syncd.migrate import upgrade
    from syncd.schema import Contact, InternalList, ListMembership
    from syncd.store import ledger as chain_ledger

    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
        admin.dispose()
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_DATABASE
    ctx = AppContext.open(_settings(url))
    upgrade(ctx.engine)
    ctx.sync_lists()
    now = datetime.now(UTC)
    given = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with ctx.engine.begin() as conn:
        list_ids = list(conn.execute(select(InternalList.id).where(
            InternalList.name.in_(["newsletter-nl", "newsletter-en"]))).scalars())
        step = 10_000
        for start in range(0, count, step):
            ids = range(start + 1, min(start + step, count) + 1)
            conn.execute(insert(Contact), [
                {"id": i, "email_key": email(i), "email_display": email(i),
                 "first_name": f"First{i}", "last_name": f"Last{i}", "attributes": {},
                 "is_customer": False, "created_at": now, "updated_at": now, "revision": 3}
                for i in ids])
            chain_ledger.append(Session(bind=conn), [  # linked into the ledger's chain
                {"contact_id": i, "purpose": "newsletter", "action": action,
                 "occurred_at": given + timedelta(minutes=offset), "recorded_at": now,
                 "source": "web_form", "email_at_time": email(i), "ip": "192.0.2.1",
                 "dedupe_key": f"{i:032x}{action}"}
                for i in ids for action, offset in (("given", 0), ("confirmed", 30))])
            conn.execute(insert(ListMembership), [
                {"contact_id": i, "list_id": lid, "added_at": now, "source": "bench"}
                for i in ids for lid in list_ids])
        if kind == "postgresql":
            conn.execute(text("ANALYZE"))
    ctx.close()
    return url


def verify(url: str, people: list[int], duplicates_sent: int = 0) -> dict[str, Any]:
    """Each person's unsubscribe: one applied inbox row, one withdrawal, one suppression,
    no newsletter list left."""
    from sqlalchemy import func, select

    from syncd.context import AppContext
    from syncd.db import transaction
    from syncd.schema import ConsentEvent, Contact, ListMembership, Suppression, WebhookEvent

    ctx = AppContext.open(_settings(url))
    hmacs = [ctx.keyring.address_hmac(email(i)) for i in people]
    found: dict[str, int] = {}
    with transaction(ctx.sessions) as session:
        for start in range(0, len(people), 900):
            ids, macs = people[start:start + 900], hmacs[start:start + 900]
            rows = session.execute(select(WebhookEvent.status, func.count())
                                   .where(WebhookEvent.address_hmac.in_(macs))
                                   .group_by(WebhookEvent.status)).all()
            for status, n in rows:
                found[f"inbox_{status}"] = found.get(f"inbox_{status}", 0) + n
            found["withdrawals"] = found.get("withdrawals", 0) + (session.scalar(
                select(func.count()).select_from(ConsentEvent).join(
                    Contact, Contact.id == ConsentEvent.contact_id)
                .where(Contact.email_key.in_([email(i) for i in ids]),
                       ConsentEvent.action == "withdrawn")) or 0)
            found["suppressions"] = found.get("suppressions", 0) + (session.scalar(
                select(func.count()).select_from(Suppression)
                .where(Suppression.address_hmac.in_(macs))) or 0)
            found["still_on_lists"] = found.get("still_on_lists", 0) + (session.scalar(
                select(func.count()).select_from(ListMembership).join(
                    Contact, Contact.id == ListMembership.contact_id)
                .where(Contact.email_key.in_([email(i) for i in ids]))) or 0)
    ctx.close()
    expected = len(people)
    exactly_once = (found.get("inbox_applied", 0) == expected
                    and sum(v for k, v in found.items() if k.startswith("inbox_")) == expected
                    and found.get("withdrawals", 0) == expected
                    and found.get("suppressions", 0) == expected
                    and found.get("still_on_lists", 0) == 0)
    return {"events": expected, "duplicates_sent": duplicates_sent, **found,
            "every_event_applied_exactly_once": exactly_once,
            "lost": expected - found.get("inbox_applied", 0)}


# -- the server process ---------------------------------------------------------------


def serve(url: str, port_file: str) -> None:
    """Child process: the service app on 127.0.0.1, one uvicorn worker."""
    import uvicorn

    from syncd import logs
    from syncd.context import AppContext
    from syncd.service.app import create_app

    ctx = AppContext.open(_settings(url))
    logs.configure(level="info", fmt="json", keyring=ctx.keyring, secrets=(SECRET,))
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=0,
                                           log_config=None, access_log=False,
                                           lifespan="off"))

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        Path(port_file).write_text(str(port))
        await task

    asyncio.run(main())


def start_server(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port_file = workdir / "port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, __file__, "--serve", url, str(port_file)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("webhook server did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


# -- the load -------------------------------------------------------------------------


def body(i: int, fired: datetime) -> bytes:
    return (f"type=unsubscribe&fired_at={quote(fired.strftime('%Y-%m-%d %H:%M:%S'))}"
            "&data%5Baction%5D=unsub&data%5Breason%5D=manual&data%5Bid%5D=94826aa750"
            f"&data%5Bemail%5D={quote(email(i))}&data%5Bemail_type%5D=html"
            f"&data%5Bmerges%5D%5BEMAIL%5D={quote(email(i))}&data%5Bmerges%5D%5BFNAME%5D=First"
            f"&data%5Blist_id%5D={LIST_ID}&data%5Bcampaign_id%5D=cb398d21d2").encode()


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, path: str, payload: bytes, method: str = "POST") -> tuple[int, bytes]:
        try:
            return await self._post(path, payload, method)
        except (IndexError, ConnectionError, asyncio.IncompleteReadError):
            # uvicorn closed this keep-alive connection while it sat idle (5 s) before
            # reading the request: open another and send it (the request was not seen).
            self.close()
            self.reader, self.writer = await asyncio.open_connection(
                *self.writer.get_extra_info("peername")[:2])
            return await self._post(path, payload, method)

    async def _post(self, path: str, payload: bytes, method: str) -> tuple[int, bytes]:
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: MailChimp.com\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc), load-independent cost."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99),
            "max_ms": round(ordered[-1] * 1000, 2),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2)}


async def open_loop(port: int, people: list[int], rate: float) -> dict[str, Any]:
    path = f"/webhooks/mailchimp/{SECRET}"
    idle: list[Connection] = []
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    fired = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()

    async def one(n: int, person: int) -> None:
        due = started + n / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        conn = idle.pop() if idle else await Connection.open(port)
        status, _ = await conn.post(path, body(person, fired))
        latencies.append(time.perf_counter() - due)  # from the scheduled moment
        statuses[status] = statuses.get(status, 0) + 1
        idle.append(conn)

    await asyncio.gather(*(one(n, p) for n, p in enumerate(people)))
    for conn in idle:
        conn.close()
    return {"rate_per_second": rate, "requests": len(people),
            "seconds": round(time.perf_counter() - started, 2),
            "connections_used": len(idle), "statuses": statuses, **_percentiles(latencies)}


async def closed_loop(port: int, people: list[int], clients: int,
                      seconds: float) -> tuple[dict[str, Any], list[int]]:
    path = f"/webhooks/mailchimp/{SECRET}"
    queue = list(reversed(people))
    done: list[int] = []
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    fired = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    stop_at = started + seconds

    async def client() -> None:
        conn = await Connection.open(port)
        while queue and time.perf_counter() < stop_at:
            person = queue.pop()
            sent = time.perf_counter()
            status, _ = await conn.post(path, body(person, fired))
            latencies.append(time.perf_counter() - sent)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                done.append(person)
        conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return ({"clients": clients, "seconds": round(elapsed, 2), "requests": len(latencies),
             "webhooks_per_second": round(len(latencies) / elapsed, 1),
             "statuses": statuses, **_percentiles(latencies)}, done)


async def burst(port: int, people: list[int], duplicates: int) -> dict[str, Any]:
    path = f"/webhooks/mailchimp/{SECRET}"
    fired = datetime.now(UTC).replace(microsecond=0)
    bodies = [body(p, fired) for p in people] + [body(p, fired) for p in people[:duplicates]]
    answers: dict[str, int] = {}
    gate = asyncio.Event()

    async def one(payload: bytes) -> None:
        conn = await Connection.open(port)
        await gate.wait()
        status, text = await conn.post(path, payload)
        key = f"{status} {text.decode().strip()}"
        answers[key] = answers.get(key, 0) + 1
        conn.close()

    tasks = [asyncio.create_task(one(b)) for b in bodies]
    await asyncio.sleep(0.5)  # let the connections open first: then all send at once
    started = time.perf_counter()
    gate.set()
    await asyncio.gather(*tasks)
    return {"deliveries": len(bodies), "distinct": len(people), "duplicates": duplicates,
            "seconds": round(time.perf_counter() - started, 3), "answers": answers}


async def http_floor(port: int, requests: int, clients: int) -> dict[str, Any]:
    """The validator GET: the same app, secret check and HTTP path, no database."""
    path = f"/webhooks/mailchimp/{SECRET}"
    left = [requests]

    async def client() -> None:
        conn = await Connection.open(port)
        while left[0] > 0:
            left[0] -= 1
            await conn.post(path, b"", method="GET")
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {"requests": requests, "per_second": round(requests / elapsed, 1)}


def server_histogram(port: int) -> dict[str, Any]:
    """PURGE_LATENCY as the server measured it (received -> committed)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    buckets: dict[str, float] = {}
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith("syncd_purge_latency_seconds_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            buckets[bound] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("syncd_purge_latency_seconds_sum"):
            total = float(line.rsplit(" ", 1)[1])
        elif line.startswith("syncd_purge_latency_seconds_count"):
            count = float(line.rsplit(" ", 1)[1])
    return {"purges": int(count), "mean_ms": round(total / count * 1000, 2) if count else None,
            "share_within_25ms": round(buckets.get("0.025", 0) / count, 4) if count else None,
            "share_within_10ms": round(buckets.get("0.01", 0) / count, 4) if count else None}


def run_one(kind: str, quick: bool) -> dict[str, Any]:
    open_seconds = 5 if quick else 15
    closed_seconds = 5.0 if quick else 15.0
    rate, clients = 200.0, 16
    open_people = int(rate * open_seconds)
    closed_budget = 2000 * int(closed_seconds)
    burst_people = 800
    total = open_people + closed_budget + burst_people
    with tempfile.TemporaryDirectory(prefix="syncd-webhook-bench-") as tmp:
        workdir = Path(tmp)
        t0 = time.perf_counter()
        url = prepare(kind, workdir, total)
        seeded = time.perf_counter() - t0
        proc, port = start_server(url, workdir)
        try:
            people = list(range(1, total + 1))
            a_people = people[:open_people]
            b_people = people[open_people:open_people + closed_budget]
            c_people = people[open_people + closed_budget:]
            load_before = os.getloadavg()
            cpu = cpu_seconds(proc.pid)
            floor = asyncio.run(http_floor(port, 2000, clients))
            floor["server_cpu_ms_per_request"] = round(
                (cpu_seconds(proc.pid) - cpu) / 2000 * 1000, 3)
            cpu = cpu_seconds(proc.pid)
            a = asyncio.run(open_loop(port, a_people, rate))
            a["server_cpu_ms_per_webhook"] = round(
                (cpu_seconds(proc.pid) - cpu) / len(a_people) * 1000, 3)
            histogram_a = server_histogram(port)
            cpu = cpu_seconds(proc.pid)
            b, b_done = asyncio.run(closed_loop(port, b_people, clients, closed_seconds))
            b["server_cpu_ms_per_webhook"] = round(
                (cpu_seconds(proc.pid) - cpu) / max(1, b["requests"]) * 1000, 3)
            c = asyncio.run(burst(port, c_people, 200))
            load_after = os.getloadavg()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        a["database_check"] = verify(url, a_people)
        b["database_check"] = verify(url, sorted(b_done))
        c["database_check"] = verify(url, c_people, duplicates_sent=200)
        return {"database": kind, "contacts_seeded": total, "seed_seconds": round(seeded, 1),
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in load_after],
                "http_floor_validator_get": floor, "a_open_loop_200_per_second": a,
                "a_server_purge_latency": histogram_a,
                "b_closed_loop": b, "c_burst_1000": c}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", nargs=2, metavar=("URL", "PORT_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results: dict[str, Any] = {
        "what": "Mailchimp unsubscribe webhooks -> committed purge, real uvicorn on 127.0.0.1",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "note": "load generator and server share the machine (and other work)"},
        "targets": {"open_loop_p99_ms": 25, "sustained_per_second": 500, "lost": 0},
        "runs": {}}
    if RESULTS.exists() and args.db != "both":
        previous = json.loads(RESULTS.read_text())
        results["runs"] = previous.get("runs", {})
    for kind in kinds:
        print(f"== {kind}", flush=True)
        outcome = run_one(kind, args.quick)
        results["runs"][kind] = outcome
        print(json.dumps(outcome, indent=2), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
