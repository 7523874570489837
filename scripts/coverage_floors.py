"""Branch-coverage floors of the legal core, checked after `make test` from the combined
coverage data (.coverage): prints each floored package's branch coverage and fails when one
is below its floor (the floors live in pyproject.toml, [tool.syncd.coverage-floors]).

Branches, not lines: a rule is an `if`, and a test suite can run every line of a rule while
never taking the branch where the rule says no."""

from __future__ import annotations

import json
import sys
import tempfile
import tomllib
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parent.parent


def floors() -> dict[str, float]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found: dict[str, float] = config["tool"]["syncd"]["coverage-floors"]
    return found


def branch_totals(files: dict[str, dict[str, object]], package: str) -> tuple[int, int]:
    """(covered, total) branches of the files under `package` (a path like syncd/sync)."""
    covered = total = 0
    prefix = package.rstrip("/") + "/"
    for name, entry in files.items():
        if Path(name).as_posix().startswith(prefix):
            summary = entry["summary"]
            assert isinstance(summary, dict)
            covered += int(summary["covered_branches"])
            total += int(summary["num_branches"])
    return covered, total


def main() -> int:
    data_file = ROOT / ".coverage"
    if not data_file.exists():
        print(f"no coverage data at {data_file}: run the suite with --cov first",
              file=sys.stderr)
        return 2
    cov = coverage.Coverage(data_file=str(data_file))
    cov.load()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(out))
        report = json.loads(out.read_text(encoding="utf-8"))
    files = {str(Path(name).resolve().relative_to(ROOT)) if Path(name).is_absolute() else name:
             entry for name, entry in report["files"].items()}
    failed = []
    print(f"{'package':<18} {'branches':>13} {'covered':>8} {'floor':>6}")
    for package, floor in floors().items():
        covered, total = branch_totals(files, package)
        share = 100.0 * covered / total if total else 100.0
        verdict = "ok" if share >= floor else "BELOW THE FLOOR"
        print(f"{package:<18} {covered:>6} / {total:<6} {share:>7.1f}% {floor:>5.1f}%  {verdict}")
        if share < floor:
            failed.append(package)
    if failed:
        print(f"branch coverage below the floor in {', '.join(failed)}: add tests that take "
              "the untaken branches (coverage report above lists them)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
