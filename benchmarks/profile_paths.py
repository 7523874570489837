"""Profiles of the three hot paths (import, first push, webhook purge) with py-spy, summed
up as the functions with the most cumulative and self time: benchmarks/results/profile-*.txt.

    python benchmarks/profile_paths.py                    # all three, SQLite
    python benchmarks/profile_paths.py --only webhook --db postgresql

py-spy samples the real `syncd` process (every thread, native idle time left out, so the
shares are of CPU spent): `syncd import` of N lines, `syncd sync` of N confirmed contacts
against the emulator at 20 ms per call, and `syncd serve` attached while unsubscribes
arrive at 200/s. Needs py-spy in the venv (`pip install py-spy`).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import http_load
import webhook_bench

PY_SPY = Path(sys.executable).with_name("py-spy")
TOP = 30
# Leaf frames of a thread that waits (a pool worker on its queue, the event loop in
# select, a lock): py-spy does not always see them as idle; they are counted apart.
WAITING = ("Condition.wait (", "EpollSelector.select (", "_worker (concurrent/futures/thread",
           "Event.wait (", "Thread.join (")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    """`func (file:line)` with the file cut to the package path."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "/syncd/", "/mailchimp_emulator/", "/lib/python3"):
        if marker in file:
            head = "" if marker == "site-packages/" else marker.strip("/") + "/"
            file = head + file.split(marker, 1)[1]
            break
    return f"{match['func']} ({file}:{match['line']})" if match["line"] else (
        f"{match['func']} ({file})")


def _package(frame: str) -> str:
    """The top-level package a (shortened) frame's file belongs to."""
    where = frame.rsplit(" (", 1)[-1]
    if where.startswith("<frozen"):
        return "interpreter (imports, runpy)"
    return where.split("/", 1)[0].split(".py", 1)[0]


def summarise(raw: Path, title: str, note: str) -> str:
    """Top functions by self and by cumulative share of the samples (py-spy raw format:
    one `frame;frame;... count` line per distinct stack)."""
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = waiting = 0
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [_short(f) for f in stack.split(";")]
        n = int(count)
        if frames[-1].startswith(WAITING):
            waiting += n
            continue
        total += n
        own[frames[-1]] += n
        packages[_package(frames[-1])] += n
        for frame in set(frames):
            if frame.split(" (", 1)[-1].startswith(("syncd/", "mailchimp_emulator/")):
                cumulative[frame] += n
    lines = [title, note, f"samples: {total} on CPU (py-spy, 100 per second, all threads); "
             f"{waiting} more in a waiting leaf frame left out", ""]
    for label, counter in (("self share by package", packages),
                           ("cumulative share, syncd's own functions", cumulative),
                           ("self share of samples", own)):
        lines.append(f"top {TOP} by {label}")
        lines += [f"{n / max(1, total) * 100:6.1f} %  {frame}"
                  for frame, n in counter.most_common(TOP)]
        lines.append("")
    return "\n".join(lines)


def _record(argv: list[str], raw: Path, env: dict[str, str], cwd: Path) -> None:
    subprocess.run([str(PY_SPY), "record", "-r", "100", "-F", "--format", "raw", "-o",
                    str(raw), "--", *argv], env=env, cwd=cwd, check=True, timeout=1800,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_import(tree: common.Tree, kind: str, size: int) -> tuple[Path, str]:
    path = common.write_contacts(tree.workdir / "profile.jsonl", size)
    url = common.scratch_database(kind, tree.workdir, "syncd_profile_import")
    common.migrate(tree, url)
    raw = tree.workdir / "import.raw"
    _record([sys.executable, "-m", "syncd", "import", "--json", str(path)], raw,
            tree.env(url), tree.workdir)
    common.drop_database(url)
    return raw, f"`syncd import` of {size} lines (double opt-in each), {kind}, fresh database"


def _seeded(tree: common.Tree, kind: str, name: str, size: int) -> str:
    """A migrated scratch database holding `size` confirmed contacts."""
    url = common.scratch_database(kind, tree.workdir, f"syncd_profile_{name}")
    common.migrate(tree, url)
    common.import_file(tree, url, common.write_contacts(tree.workdir / f"{name}.jsonl", size))
    return url


def profile_push(tree: common.Tree, kind: str, size: int) -> tuple[Path, str]:
    url = _seeded(tree, kind, "push", size)
    emulator = common.Emulator(tree, latency_ms=20)
    raw = tree.workdir / "push.raw"
    try:
        _record([sys.executable, "-m", "syncd", "sync", "--json"], raw, tree.env(
            url, mailchimp_api_key=common.API_KEY, mailchimp_audience_id=common.LIST_ID,
            mailchimp_base_url=emulator.base_url), tree.workdir)
    finally:
        emulator.stop()
    common.drop_database(url)
    return raw, f"first `syncd sync` of {size} confirmed contacts, emulator at 20 ms, {kind}"


def profile_webhook(tree: common.Tree, kind: str, size: int) -> tuple[Path, str]:
    url = _seeded(tree, kind, "webhook", size)
    emulator = common.Emulator(tree, latency_ms=0)
    proc, port = webhook_bench.start_service(tree, url, emulator)
    raw = tree.workdir / "webhook.raw"
    seconds = size / 200
    try:
        spy = subprocess.Popen([str(PY_SPY), "record", "-r", "100", "-F", "--format", "raw",
                                "-o", str(raw), "--pid", str(proc.pid), "-d",
                                str(int(seconds) + 1)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        fired = datetime.now(UTC).replace(microsecond=0)
        requests = [webhook_bench.unsubscribe(i, fired) for i in range(1, size + 1)]
        asyncio.run(http_load.open_loop(port, requests, 200.0, seconds))
        spy.wait(timeout=120)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        emulator.stop()
    common.drop_database(url)
    return raw, f"`syncd serve` while {size} unsubscribes arrive at 200/s (open loop), {kind}"


PATHS: dict[str, Any] = {"import": (profile_import, 20_000), "push": (profile_push, 20_000),
                         "webhook": (profile_webhook, 2_000)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=common.ROOT)
    parser.add_argument("--db", choices=common.DATABASES, default="sqlite")
    parser.add_argument("--only", default="import,push,webhook")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the sizes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncd-profile-") as tmp:
        tree = common.Tree(args.tree.resolve(), Path(tmp))
        meta = common.metadata(tree)
        for name in args.only.split(","):
            func, size = PATHS[name]
            raw, title = func(tree, args.db, int(size * args.scale))
            note = (f"commit {meta['git_commit']}, {meta['date']}, load average at start "
                    f"{meta['load_average_at_start']}")
            out = common.RESULTS / f"profile-{name}-{args.db}.txt"
            out.write_text(summarise(raw, title, note) + "\n", encoding="utf-8")
            print(f"written to {out}")


if __name__ == "__main__":
    main()
