#!/usr/bin/env bash
# `make mutation`: mutmut over the legal core, one module at a time, each against the tests
# that state its rules (pyproject.toml [tool.mutmut.syncd-tests]), then the score and the
# survivors that docs/mutation.md does not explain (exit 1 if any). Slow; not part of
# `make test`. Runs at lowered priority (nice): the machine is shared.
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
# MUTATION_MODULES="syncd.consent.policy" runs a subset (after changing one module).
if [ -n "${MUTATION_MODULES:-}" ]; then read -r -a MODULES <<< "$MUTATION_MODULES"; fi
CHILDREN="${MUTATION_CHILDREN:-2}"

# mutmut takes its test selection from pyproject.toml only; this swaps in the module's own
# (and mutates that module alone) before the run (forked workers inherit it). A new selection makes mutmut reset every
# result it holds, so each module's results are kept aside and put back at the end.
run_module() {
  nice -n 10 python - "$1" "$CHILDREN" <<'PY'
import sys
import tomllib

from mutmut.__main__ import cli
from mutmut.configuration import config

module, children = sys.argv[1], sys.argv[2]
with open("pyproject.toml", "rb") as handle:
    selections = tomllib.load(handle)["tool"]["mutmut"]["syncd-tests"]
if module not in selections:
    sys.exit(f"pyproject.toml [tool.mutmut.syncd-tests] has no tests for {module}")
config().pytest_add_cli_args_test_selection = list(selections[module])
# Only this module is mutated: generating the others' mutants took minutes of each run.
config().only_mutate = [module.replace(".", "/") + ".py"]
cli(["run", f"{module}.*", "--max-children", children])
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
  run_module "$module" 2>&1 | tr '\r' '\n' \
    | LC_ALL=C grep -v -e $'^\xe2[\xa0-\xa3]' -e $'^\xf0\x9f\x8e\x89' || true
  meta="mutants/${module//.//}.py.meta"
  if [ -f "$meta" ]; then cp "$meta" "$kept/$module.meta"; fi
  echo "   $module: $(( $(date +%s) - module_started )) s"
done
for module in "${MODULES[@]}"; do
  if [ -f "$kept/$module.meta" ]; then cp "$kept/$module.meta" "mutants/${module//.//}.py.meta"; fi
done
echo "== mutation score ($(( $(date +%s) - started )) s in all)"
python scripts/mutation_report.py "${MODULES[@]}"
