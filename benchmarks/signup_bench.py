"""Sign-up benchmark: the form endpoint through a real uvicorn on 127.0.0.1 with the
outbox on (a thread in the server process sends the queued confirmation mails to a real
local SMTP server while the sign-ups come in), then the confirmation POSTs.

    python benchmarks/signup_bench.py                 # SQLite
    python benchmarks/signup_bench.py --db postgresql
    python benchmarks/signup_bench.py --quick         # shorter phases

(a) open loop: sign-ups (distinct addresses) paced at 300 requests/s; latency from the
    scheduled moment to the answer (contact, `given`, token and outbox row committed
    before it): p50/p90/p99/max.
(b) closed loop: N clients, each sending its next sign-up when the last is answered:
    sustained sign-ups/s, once with the outbox paused and once with it sending (side
    by side in one run: the ratio is the outbox's cost).
(c) confirmations: every mail's link POSTed by N clients: confirmations/s.
Then the database and the SMTP sink are checked: every sign-up recorded, exactly one
mail per sign-up, every confirmation recorded. Targets: >= 300 sign-ups/s on SQLite,
p99 < 50 ms. Figures are reported, never asserted; results go to
benchmarks/results/signup.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import http_load
from common import scratch_database

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "signup.json"
PG_DATABASE = "syncd_bench_signup"
BASE = "http://127.0.0.1"
LINK = re.compile(r"/confirm/([A-Za-z0-9_-]{43})")


def _settings(url: str, smtp_port: int) -> Any:
    from syncd.config import load_settings

    return load_settings(None, database_url=url, pseudonym_key="benchmark-key-not-for-prod",
                         log_level="warning", log_format="json", smtp_host="127.0.0.1",
                         smtp_port=smtp_port, smtp_starttls=False,
                         mail_from="bench@example.org", public_base_url=BASE,
                         signup_rate_per_ip_per_hour=10_000_000,
                         signup_rate_per_address_per_hour=10_000_000)


def prepare(kind: str, workdir: Path) -> str:
    from syncd.db import make_engine
    from syncd.migrate import upgrade

    url = scratch_database(kind, workdir, PG_DATABASE)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def serve(url: str, port_file: str, smtp_port: int) -> None:
    """Child process: the service app and the outbox job (every 0.2 s, in a thread)."""
    import uvicorn

    from syncd import logs
    from syncd.context import AppContext
    from syncd.service.app import create_app
    from syncd.service.smtp_sender import SmtpSender
    from syncd.signup.outbox import deliver_due

    ctx = AppContext.open(_settings(url, smtp_port))
    ctx.sync_lists()
    logs.configure(level="warning", fmt="json", keyring=ctx.keyring, secrets=())
    sender = SmtpSender(ctx.settings)

    paused = Path(port_file).with_name("outbox-paused")

    def outbox() -> None:
        while True:
            if not paused.exists():
                deliver_due(ctx, sender, limit=50)
            time.sleep(0.2)

    threading.Thread(target=outbox, daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(create_app(ctx, webhooks=False), host="127.0.0.1",
                                           port=0, log_config=None, access_log=False,
                                           lifespan="off"))

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        Path(port_file).write_text(str(server.servers[0].sockets[0].getsockname()[1]))
        await task

    asyncio.run(main())


def start_server(url: str, workdir: Path, smtp_port: int) -> tuple[subprocess.Popen[bytes], int]:
    port_file = workdir / "port"
    proc = subprocess.Popen([sys.executable, __file__, "--serve", url, str(port_file),
                             str(smtp_port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def form(i: int) -> bytes:
    return urlencode({"email": f"reader{i}@example.org", "purposes": "newsletter",
                      "text_version": "bench-1", "privacy_notice_version": "2026-01",
                      "language": "en"}).encode()


def _open_loop(port: int, people: range, rate: float) -> dict[str, Any]:
    requests = [("POST", "/signup", form(i)) for i in people]
    summary, _ = asyncio.run(http_load.open_loop(port, requests, rate, len(people) / rate + 1))
    return summary


def _closed_loop(port: int, paths: list[tuple[str, bytes]], clients: int) -> dict[str, Any]:
    requests = [("POST", path, payload) for path, payload in paths]
    summary, _ = asyncio.run(http_load.closed_loop(port, requests, clients, 600.0))
    return summary


def verify(url: str, smtp_port: int, signups: int, confirmations: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from syncd.context import AppContext
    from syncd.schema import ConsentEvent, Contact, OutboxMail

    ctx = AppContext.open(_settings(url, smtp_port))
    with ctx.sessions() as session:
        count = {action: session.scalar(select(func.count()).select_from(ConsentEvent).where(
            ConsentEvent.action == action)) for action in ("given", "confirmed")}
        contacts = session.scalar(select(func.count()).select_from(Contact))
        unsent = session.scalar(select(func.count()).select_from(OutboxMail).where(
            OutboxMail.status != "sent"))
    ctx.close()
    return {"contacts": contacts, "given": count["given"], "confirmed": count["confirmed"],
            "outbox_not_sent": unsent, "every_signup_recorded": count["given"] == signups,
            "every_confirmation_recorded": count["confirmed"] == confirmations}


def run(kind: str, quick: bool) -> dict[str, Any]:
    from syncd.demo.mail_sink import MailSink

    open_n, closed_n, clients = (600, 600, 8) if quick else (1500, 3000, 8)
    sink = MailSink().start()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-signup-") as tmp:
        url = prepare(kind, Path(tmp))
        proc, port = start_server(url, Path(tmp), sink.port)
        try:
            cpu0 = http_load.cpu_seconds(proc.pid)
            paced = _open_loop(port, range(open_n), 300.0)
            sink.wait_for(open_n, timeout=300)  # the paced phase's mails are out
            paused = Path(tmp) / "outbox-paused"
            paused.touch()
            quiet = _closed_loop(
                port, [("/signup", form(i)) for i in range(open_n, open_n + closed_n)],
                clients)
            paused.unlink()
            start = open_n + closed_n
            sustained = _closed_loop(
                port, [("/signup", form(i)) for i in range(start, start + closed_n)],
                clients)
            cpu_signups = http_load.cpu_seconds(proc.pid) - cpu0
            total = open_n + 2 * closed_n
            mails = sink.wait_for(total, timeout=300)
            tokens = [m for msg in mails if (m := LINK.search(str(
                msg.get_body(preferencelist=("plain",)).get_content())))]  # type: ignore[union-attr]
            confirm = _closed_loop(
                port, [(f"/confirm/{t.group(1)}", b"") for t in tokens], clients)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        checked = verify(url, sink.port, total, len(tokens))
    recipients = [str(m["To"]) for m in sink.messages]
    sink.stop()
    return {"database": kind, "open_loop_300_per_s": paced,
            "closed_loop_outbox_paused": quiet, "closed_loop": sustained,
            "outbox_on_over_paused": round(sustained["per_second"] / quiet["per_second"], 2),
            "server_cpu_ms_per_signup": round(cpu_signups * 1000 / total, 2),
            "confirmations": confirm, "mails_received": len(recipients),
            "one_mail_per_signup": len(recipients) == len(set(recipients)) == total,
            **checked}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], args.serve[1], int(args.serve[2]))
        return 0
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = {"machine": {"python": platform.python_version(), "cpus": 2,
                           "load_average": Path("/proc/loadavg").read_text().split()[:3]},
               "runs": [run(kind, args.quick) for kind in kinds]}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
