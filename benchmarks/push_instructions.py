"""Push cost in instructions, not seconds: `syncd sync` under valgrind's callgrind, which
counts the instructions the process executed, the same figure whatever else the machine
is doing. Per tree: N confirmed contacts imported into a fresh SQLite file, a first push
to the emulator, then a no-change run; the difference over N is the marginal cost of one
contact pushed (start-up, imports and the scan cancel out).

    python benchmarks/push_instructions.py --baseline ../base --candidate . --contacts 2000

Both trees run against the same emulator process (the candidate's), in one run; results:
benchmarks/results/push-instructions.json. Slow (callgrind runs Python ~50x slower), so
the sizes are small; figures are reported, never asserted. `--keep DIR` keeps each tree's
work files (contacts, database, callgrind profiles first.out and again.out) in DIR/baseline
and DIR/candidate, for callgrind_annotate. The results name the trees by label and commit
only: no paths of the machine that ran them.

Each tree's modules are compiled to bytecode before the measured runs: with bytecode
writing off (PYTHONDONTWRITEBYTECODE), every run would otherwise compile all of syncd's
source again, about a sixth of a no-change run's instructions, growing with the lines of
source and comments rather than with the work.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

TIMEOUT_SECONDS = 1500  # every child bounded in time


def _instructions(tree: common.Tree, env: dict[str, str], out: Path, *args: str) -> int:
    """Instructions `python -m syncd ARGS` executed (callgrind's totals, all threads)."""
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, "-m", "syncd", *args]
    done = subprocess.run(argv, env={**env, "PYTHONHASHSEED": "0"}, cwd=tree.workdir,
                          capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        raise SystemExit(f"syncd {' '.join(args)} exited {done.returncode}:\n"
                         f"{done.stderr[-3000:]}")
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(encoding="utf-8"), re.M)
    if match is None:
        raise SystemExit(f"no instruction total in {out}")
    return int(match.group(1))


def compile_ahead(tree: common.Tree) -> None:
    """The tree's bytecode written next to its source (__pycache__, ignored by git), which
    the measured children then read instead of compiling (that flag only stops writes)."""
    packages = [name for name in ("syncd", "mailchimp_emulator") if (tree.path / name).is_dir()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], cwd=tree.path,
                   capture_output=True, timeout=TIMEOUT_SECONDS, check=True)


def measure(tree: common.Tree, emulator: common.Emulator, contacts: int, *,
            keep: bool = False) -> dict[str, Any]:
    compile_ahead(tree)
    seed = common.write_contacts(tree.workdir / "push.jsonl", contacts)
    url = common.scratch_database("sqlite", tree.workdir, "syncd_bench_push_instr")
    common.migrate(tree, url)
    common.import_file(tree, url, seed)
    emulator.call("POST", "/reset")
    env = tree.env(url, mailchimp_api_key=common.API_KEY,
                   mailchimp_audience_id=common.LIST_ID, mailchimp_base_url=emulator.base_url)
    first = _instructions(tree, env, tree.workdir / "first.out", "sync", "--json")
    again = _instructions(tree, env, tree.workdir / "again.out", "sync", "--json")
    added = emulator.call("GET", "/stats")
    if not keep:
        common.drop_database(url)
    return {"contacts": contacts, "first_push_instructions": first,
            "no_change_run_instructions": again,
            "marginal_instructions_per_contact": (first - again) / contacts,
            "emulator": added, "commit": tree.commit()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--candidate", type=Path, required=True)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=common.RESULTS / "push-instructions.json")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the work files and callgrind profiles in DIR/<label>")
    args = parser.parse_args()
    document: dict[str, Any] = {"benchmark": "push-instructions", "database": "sqlite",
                                "bytecode": "compiled ahead (compileall)"}
    work: AbstractContextManager[str] = (
        nullcontext(str(args.keep)) if args.keep
        else tempfile.TemporaryDirectory(prefix="syncd-bench-instr-"))
    with work as tmp:
        trees = {}
        for label, path in (("baseline", args.baseline), ("candidate", args.candidate)):
            workdir = Path(tmp) / label
            workdir.mkdir(parents=True, exist_ok=True)
            trees[label] = common.Tree(path.resolve(), workdir)
        document.update(common.metadata(trees["candidate"]))
        # The tree is named by its label and commit, never by where it sat on this machine.
        document["tree"] = "candidate"
        emulator = common.Emulator(trees["candidate"], latency_ms=0)
        try:
            for label, tree in trees.items():
                print(f"{label}: {tree.commit()}", flush=True)
                document[label] = {"tree": label,
                                   **measure(tree, emulator, args.contacts, keep=bool(args.keep))}
        finally:
            emulator.stop()
    base, cand = document["baseline"], document["candidate"]
    for key in ("first_push_instructions", "no_change_run_instructions",
                "marginal_instructions_per_contact"):
        document[f"ratio {key}"] = cand[key] / base[key]
        print(f"{key:40} {base[key]:>16,.0f} {cand[key]:>16,.0f}  B/A {cand[key] / base[key]:.3f}")
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    if args.keep:
        print(f"work files and profiles kept in {args.keep}")


if __name__ == "__main__":
    main()
