"""The mutation score of the legal core, from mutmut's results (mutants/**/*.meta), after
`make mutation`: per module, mutants killed / survived, and the survivors that
docs/mutation.md does not list as equivalent. Exit 1 if there is any such survivor.

A survivor is a change to the code that no test notices: either a rule without a test
(write the test) or a change that cannot alter behaviour (an equivalent mutant: list it in
docs/mutation.md with the reason)."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "mutation.md"
# mutmut's exit codes: 1 and 3 a kill (the tests failed), 0 a survivor, 36/24/152/255
# a timeout (counted as killed: the mutant hung the code under test), 37 a type-check kill.
KILLED = {1, 3, 24, 36, 37, 152, 255, -24}
SURVIVED = {0}
ROW = re.compile(r"^\|\s*`?(syncd\.[^|`\s]+__mutmut_\d+)`?\s*\|", re.M)
POSTGRES_ONLY = "Killed on PostgreSQL only"


def _doc() -> str:
    return DOC.read_text(encoding="utf-8") if DOC.exists() else ""


def equivalent_names() -> set[str]:
    """Mutant names in the doc's table rows (`| syncd.x.y__mutmut_N | ... |`)."""
    return set(ROW.findall(_doc()))


def judged_survivors() -> set[str]:
    """The table rows outside the doc's "Killed on PostgreSQL only": mutants judged to
    survive the tests of both databases (equivalent, or kept by decision)."""
    return {name for section in re.split(r"^## ", _doc(), flags=re.M)
            if not section.startswith(POSTGRES_ONLY) for name in ROW.findall(section)}


def main(modules: list[str]) -> int:
    listed = equivalent_names()
    unexplained: list[str] = []
    total_killed = total_equivalent = total = not_run = 0
    for module in modules:
        meta = ROOT / "mutants" / (module.replace(".", "/") + ".py.meta")
        if not meta.exists():
            print(f"{module}: no results (mutmut did not run it)", file=sys.stderr)
            return 2
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        counts: Counter[str] = Counter()
        for name, code in codes.items():
            if code in KILLED:
                counts["killed"] += 1
            elif code in SURVIVED and name in listed:
                counts["equivalent"] += 1
            elif code in SURVIVED:
                counts["survived"] += 1
                unexplained.append(name)
            elif code is None:  # a partial run (MUTATION_MUTANTS) or one stopped early
                counts["not run"] += 1
            else:
                counts[f"other ({code})"] += 1
                unexplained.append(name)
        mutants = sum(counts.values()) - counts["not run"]
        not_run += counts["not run"]
        score = 100.0 * counts["killed"] / (mutants - counts["equivalent"] or 1)
        print(f"{module:<32} {mutants:>4} mutants, {counts['killed']:>4} killed, "
              f"{counts['equivalent']:>3} equivalent, {counts['survived']:>3} survived: "
              f"{score:5.1f} % of the non-equivalent killed"
              + (f" ({counts['not run']} not run)" if counts["not run"] else ""))
        total += mutants
        total_killed += counts["killed"]
        total_equivalent += counts["equivalent"]
    score = 100.0 * total_killed / (total - total_equivalent or 1)
    print(f"{'all':<32} {total:>4} mutants, {total_killed:>4} killed, {total_equivalent:>3} "
          f"equivalent: {score:5.1f} % of the non-equivalent killed")
    if unexplained:
        print("\nsurvivors neither killed nor listed as equivalent in docs/mutation.md "
              "(see them with `.venv/bin/mutmut show NAME`):", file=sys.stderr)
        for name in unexplained:
            print(f"  {name}", file=sys.stderr)
        return 1
    if not_run:
        print(f"\n{not_run} mutants not run: a partial score", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
