"""Two source trees side by side in one run: chosen benchmarks, interleaved A, B, A, B ...
for N rounds, then per figure the median of each tree and the ratio B/A.

    python benchmarks/compare.py --baseline /path/to/old/tree --candidate . --rounds 3 \\
        --only push,webhook,import

Each benchmark script (from THIS checkout) runs as a child with `--tree` set, so every
syncd process it starts has PYTHONPATH pointing at that tree (same interpreter, same
dependencies); the scripts use only syncd's CLI, HTTP and SYNCD_* settings, which both
trees share. The order within a round alternates (A,B then B,A) so a trend in the
machine's load does not favour one tree. Sizes are smaller than the scripts' defaults
(a round should take minutes); `--full` uses the defaults. Results:
benchmarks/results/compare.json. Ratios near 1 are "within noise": read them against
the spread of the rounds (min..max), printed next to each median.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

HERE = common.HERE
# Per benchmark: its script's module and the options of one compare round.
ROUND_OPTIONS = {
    "import": ["--sizes", "20000"],
    "push": ["--contacts", "20000", "--naive-sample", "20"],
    "webhook": ["--seconds", "5", "--rates", "200"],
}
# Tiny sizes: does every script run against both trees? (figures meaningless)
SMOKE_OPTIONS = {
    "import": ["--sizes", "1000"],
    "push": ["--contacts", "1000", "--naive-sample", "5"],
    "webhook": ["--seconds", "1", "--rates", "200"],
}
# Figures where a smaller number is better (a ratio above 1 is then a regression):
# latencies, durations, CPU and memory; rates (".../s") are better higher.
LOWER_IS_BETTER = ("CPU", " ms", "RSS")


def lower_is_better(figure: str) -> bool:
    return any(mark in figure for mark in LOWER_IS_BETTER) or figure.endswith(" s")


def run_once(name: str, tree: Path, db: str, sizes: str, work: Path) -> dict[str, float]:
    out = work / f"{name}-{tree.name}-{os.getpid()}.json"
    options = {"full": [], "round": ROUND_OPTIONS[name], "smoke": SMOKE_OPTIONS[name]}[sizes]
    argv = [sys.executable, str(HERE / f"{name}_bench.py"), "--tree", str(tree), "--db", db,
            "--out", str(out), *options]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{name} on {tree} failed:\n{done.stderr[-3000:]}")
    module = importlib.import_module(f"{name}_bench")
    figures: dict[str, float] = module.headline(json.loads(out.read_text()))
    return figures


def summarise(samples: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    rows = []
    for figure in samples["A"]:
        a, b = samples["A"][figure], samples["B"].get(figure, [])
        if not b:
            continue
        median_a, median_b = statistics.median(a), statistics.median(b)
        ratio = median_b / median_a if median_a else math.nan
        lower_better = lower_is_better(figure)
        rows.append({"figure": figure, "baseline_median": median_a, "candidate_median": median_b,
                     "ratio_candidate_over_baseline": ratio,
                     "baseline_runs": a, "candidate_runs": b,
                     "better_when": "lower" if lower_better else "higher"})
    return rows


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="tree A")
    parser.add_argument("--candidate", type=Path, required=True, help="tree B")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="push,webhook,import")
    parser.add_argument("--db", choices=[*common.DATABASES, "both"], default="both")
    parser.add_argument("--full", action="store_true", help="the scripts' default sizes")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a check that the "
                                                             "scripts run on both trees")
    parser.add_argument("--out", type=Path, default=common.RESULTS / "compare.json")
    args = parser.parse_args()
    sizes = "full" if args.full else "smoke" if args.smoke else "round"
    trees = {"A": args.baseline.resolve(), "B": args.candidate.resolve()}
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROUND_OPTIONS]
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(unknown)} "
                     f"(known: {', '.join(ROUND_OPTIONS)})")
    meta = {label: common.metadata(common.Tree(path, Path("/"))) for label, path in trees.items()}
    document: dict[str, Any] = {
        "benchmark": "compare", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "baseline": {"tree": str(trees["A"]), "git_commit": meta["A"]["git_commit"]},
        "candidate": {"tree": str(trees["B"]), "git_commit": meta["B"]["git_commit"]},
        "rounds": args.rounds, "database": args.db, "sizes": sizes, "results": {}}
    with tempfile.TemporaryDirectory(prefix="syncd-compare-") as tmp:
        for name in names:
            samples: dict[str, dict[str, list[float]]] = {"A": {}, "B": {}}
            for round_ in range(args.rounds):
                order = ("A", "B") if round_ % 2 == 0 else ("B", "A")
                for label in order:
                    print(f"{name}: round {round_ + 1}/{args.rounds}, {label} "
                          f"({meta[label]['git_commit']})", file=sys.stderr, flush=True)
                    figures = run_once(name, trees[label], args.db, sizes, Path(tmp))
                    for figure, value in figures.items():
                        samples[label].setdefault(figure, []).append(value)
            document["results"][name] = summarise(samples)
    document["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    common.write_results("compare", document, args.out)
    print(f"A = {meta['A']['git_commit']} ({trees['A']}), B = {meta['B']['git_commit']} "
          f"({trees['B']}); {args.rounds} rounds interleaved; load "
          f"{document['load_average_at_start']} -> {document['load_average_at_end']}")
    rows = [(row["figure"], f"{_fmt(row['baseline_median'])} [{_fmt(min(row['baseline_runs']))}"
             f"..{_fmt(max(row['baseline_runs']))}]",
             f"{_fmt(row['candidate_median'])} [{_fmt(min(row['candidate_runs']))}"
             f"..{_fmt(max(row['candidate_runs']))}]",
             f"{row['ratio_candidate_over_baseline']:.2f}", row["better_when"])
            for result in document["results"].values() for row in result]
    common.print_table("medians [min..max of the rounds]",
                       ("figure", "A baseline", "B candidate", "B/A", "better"), rows)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
