#!/usr/bin/env bash
# `make mutation`: mutmut over the legal core, one module at a time, each against the tests
# that state its rules (pyproject.toml [tool.mutmut.syncd-tests]), then the score and the
# survivors that docs/mutation.md does not explain (exit 1 if any). Slow; not part of
# `make test`. Runs at lowered priority (nice): the machine is shared.
#
# A module with code that runs on PostgreSQL only (purge.py's PostgreSQL branch) gets a
# second pass: what the SQLite pass left standing, run against the module's PostgreSQL
# tests (SYNCD_TEST_POSTGRES_URL, the tests' local server when unset), its kills merged into
# the module's results (survivors docs/mutation.md judges equivalent are not run again).
# MUTATION_POSTGRES=0 skips it; MUTATION_POSTGRES_TIMEOUT (seconds, default 1800) bounds it.
set -euo pipefail
cd "$(dirname "$0")/.."

MODULES=(
  syncd.consent.policy
  syncd.webhooks.purge
  syncd.webhooks.apply
  syncd.webhooks.member_events
  syncd.webhooks.renames
  syncd.webhooks.mailchimp_form
  syncd.sync.plan
)
# MUTATION_MODULES="syncd.consent.policy" runs a subset (after changing one module);
# MUTATION_MUTANTS="syncd.webhooks.purge.x_find__mutmut_*" only those mutants (names or
# mutmut's globs) of the modules run (after writing a test for them).
if [ -n "${MUTATION_MODULES:-}" ]; then read -r -a MODULES <<< "$MUTATION_MODULES"; fi
export CHILDREN="${MUTATION_CHILDREN:-2}"
# The PostgreSQL pass's tests per module (with -m "not slow" -k postgresql): the purge's
# own test files, which reach the PostgreSQL branch of withdraw and _write_postgres, and
# the group commit's (several purges under one hold of the chain head: _write_postgres
# moves the held head).
declare -A POSTGRES_TESTS=(
  [syncd.webhooks.purge]="tests/webhooks/test_purge_round_trips.py tests/webhooks/test_purge_rules.py tests/webhooks/test_purge_details.py tests/webhooks/test_purge_paths.py tests/webhooks/test_fixture_deliveries.py tests/webhooks/test_group_commit.py"
)
POSTGRES_TIMEOUT="${MUTATION_POSTGRES_TIMEOUT:-1800}"

# mutmut takes its test selection from pyproject.toml only; this swaps in the pass's own
# (and mutates that module alone) before the run (forked workers inherit it). A new
# selection makes mutmut reset every result it holds, so each module's results are kept
# aside and put back at the end.
# $1: sqlite (the module's selection in pyproject.toml [tool.mutmut.syncd-tests], its
# mutants or those of MUTATION_MUTANTS) or postgresql (the tests after $4, with
# -m "not slow" -k postgresql, the mutants the SQLite results $3 leave standing); $2 the module.
run_pass() {
  local bound=()  # the PostgreSQL pass is stopped after MUTATION_POSTGRES_TIMEOUT seconds
  if [ "$1" = postgresql ]; then bound=(timeout --kill-after=30 "$POSTGRES_TIMEOUT"); fi
  "${bound[@]}" nice -n 10 python - "$@" <<'PY'
import json
import os
import sys
import tomllib

sys.path.insert(0, "scripts")
import mutmut.__main__ as mutmut_main
from mutation_report import KILLED, judged_survivors
from mutmut.__main__ import cli
from mutmut.configuration import config

kind, module, *rest = sys.argv[1:]
if kind == "sqlite":
    with open("pyproject.toml", "rb") as handle:
        selections = tomllib.load(handle)["tool"]["mutmut"]["syncd-tests"]
    if module not in selections:
        sys.exit(f"pyproject.toml [tool.mutmut.syncd-tests] has no tests for {module}")
    selection = list(selections[module])
    chosen = [name for name in os.environ.get("MUTATION_MUTANTS", "").split()
              if name.startswith(module + ".")]
    names = chosen or [f"{module}.*"]
else:
    sqlite_meta, *tests = rest
    with open(sqlite_meta, encoding="utf-8") as handle:
        codes = json.load(handle)["exit_code_by_key"]
    left = [name for name, code in codes.items() if code is not None and code not in KILLED]
    # A survivor of the SQLite tests that docs/mutation.md judges equivalent (on both
    # databases) would run all its tests for nothing, about a minute each on PostgreSQL
    # (MUTATION_POSTGRES_ALL=1 runs them too); one no SQLite test reached is run: it has
    # survived nothing yet.
    judged = set() if os.environ.get("MUTATION_POSTGRES_ALL") == "1" else judged_survivors()
    names = sorted(name for name in left if codes[name] != 0 or name not in judged)
    print(f"   {len(left)} mutants left standing by the SQLite pass, "
          f"{len(left) - len(names)} of them judged equivalent in docs/mutation.md: "
          f"{len(names)} to run")
    if not names:
        sys.exit(0)
    selection = [*tests, "-m", "not slow", "-k", "postgresql"]
config().pytest_add_cli_args_test_selection = selection
# Only this module is mutated: generating the others' mutants took minutes of each run.
config().only_mutate = [module.replace(".", "/") + ".py"]


def tests_for_mutant_names(names: list[str]) -> set[str]:
    """As mutmut's own, but a named mutant whose function no test of the selection reaches
    is left to the run, which records it as "no tests" (mutmut's raises KeyError)."""
    if any("*" in name for name in names):
        return original(names)
    reached = mutmut_main.state().tests_by_mangled_function_name
    return {test for name in names
            for test in reached.get(mutmut_main.mangled_name_from_mutant_name(name), ())}


original = mutmut_main.tests_for_mutant_names
mutmut_main.tests_for_mutant_names = tests_for_mutant_names
cli(["run", *names, "--max-children", os.environ["CHILDREN"]])
PY
}

# The PostgreSQL pass of $1: the mutants its SQLite results ($2) do not count killed, run
# against its PostgreSQL tests from a fresh mutants/ (mutmut reruns the mutants it is given
# by name); a kill there replaces the SQLite verdict in $2. A mutant whose function no
# PostgreSQL test reaches stays as the SQLite pass left it.
run_postgres_pass() {
  rm -rf mutants
  # shellcheck disable=SC2086  # the file list splits into arguments
  run_pass postgresql "$1" "$2" ${POSTGRES_TESTS[$1]} 2>&1 | tr '\r' '\n' \
    | LC_ALL=C grep -v -e $'^\xe2[\xa0-\xa3]' -e $'^\xf0\x9f\x8e\x89' || true
  local meta="mutants/${1//.//}.py.meta"
  python - "$2" "$meta" <<'PY'
import json
import os
import sys

sys.path.insert(0, "scripts")
from mutation_report import KILLED, judged_survivors

sqlite_meta, postgres_meta = sys.argv[1:]
with open(sqlite_meta, encoding="utf-8") as handle:
    merged = json.load(handle)
try:
    with open(postgres_meta, encoding="utf-8") as handle:
        postgres = json.load(handle)["exit_code_by_key"]
except (OSError, ValueError):  # the pass failed or was stopped before its first result
    postgres = {}
codes = merged["exit_code_by_key"]
judged = set() if os.environ.get("MUTATION_POSTGRES_ALL") == "1" else judged_survivors()
ran = [name for name, code in codes.items()
       if code is not None and code not in KILLED and (code != 0 or name not in judged)]
killed = [name for name in ran if postgres.get(name) in KILLED]
# A kill replaces the SQLite verdict; so does any verdict of a mutant no SQLite test
# reached ("no tests", 33): a survivor there has now survived the PostgreSQL tests.
for name in ran:
    if postgres.get(name) is not None and (name in killed or codes[name] == 33):
        codes[name] = postgres[name]
untried = sum(1 for name in ran if postgres.get(name) is None)
with open(sqlite_meta, "w", encoding="utf-8") as handle:
    json.dump(merged, handle)
print(f"   PostgreSQL pass: {len(killed)} of {len(ran)} killed"
      + (f", {untried} not run (the pass failed or ran out of time)" if untried else ""))
PY
}

kept=$(mktemp -d)
trap 'rm -rf "$kept"' EXIT
started=$(date +%s)
for module in "${MODULES[@]}"; do
  echo "== mutmut: $module"
  module_started=$(date +%s)
  # From scratch for each module: results cached from older code or older tests would be
  # stale, and mutmut does not mutate again a file it copied unmutated for the module before.
  rm -rf mutants
  # Progress spinner lines (braille, U+2800-U+28FF) and one line per killed mutant dropped.
  run_pass sqlite "$module" 2>&1 | tr '\r' '\n' \
    | LC_ALL=C grep -v -e $'^\xe2[\xa0-\xa3]' -e $'^\xf0\x9f\x8e\x89' || true
  meta="mutants/${module//.//}.py.meta"
  if [ -f "$meta" ]; then cp "$meta" "$kept/$module.meta"; fi
  echo "   $module: $(( $(date +%s) - module_started )) s"
  if [ -n "${POSTGRES_TESTS[$module]:-}" ] && [ "${MUTATION_POSTGRES:-1}" != 0 ] \
      && [ -f "$kept/$module.meta" ]; then
    echo "== mutmut on PostgreSQL: $module"
    postgres_started=$(date +%s)
    run_postgres_pass "$module" "$kept/$module.meta"
    echo "   $module on PostgreSQL: $(( $(date +%s) - postgres_started )) s"
  fi
done
for module in "${MODULES[@]}"; do
  if [ -f "$kept/$module.meta" ]; then cp "$kept/$module.meta" "mutants/${module//.//}.py.meta"; fi
done
echo "== mutation score ($(( $(date +%s) - started )) s in all)"
python scripts/mutation_report.py "${MODULES[@]}"
