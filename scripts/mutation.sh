#!/usr/bin/env bash
# `make mutation`: mutmut over the legal core, one module at a time, then the score and the
# survivors that docs/mutation.md does not explain (exit 1 if any). Slow; not part of
# `make test`. Configuration (the modules, the fast SQLite-only test selection) is in
# pyproject.toml [tool.mutmut].
set -euo pipefail
cd "$(dirname "$0")/.."

MODULES=(
  syncd.consent.policy
  syncd.webhooks.purge
  syncd.webhooks.apply
  syncd.webhooks.mailchimp_form
  syncd.sync.plan
)
# MUTATION_MODULES="syncd.consent.policy" runs a subset (after changing one module).
if [ -n "${MUTATION_MODULES:-}" ]; then read -r -a MODULES <<< "$MUTATION_MODULES"; fi
CHILDREN="${MUTATION_CHILDREN:-2}"

# From scratch: results cached from older code or older tests would be stale.
rm -rf mutants
started=$(date +%s)
for module in "${MODULES[@]}"; do
  echo "== mutmut: $module"
  module_started=$(date +%s)
  # Progress spinner lines (braille, U+2800-U+28FF) and one line per killed mutant dropped.
  mutmut run "${module}.*" --max-children "$CHILDREN" 2>&1 | tr '\r' '\n' \
    | LC_ALL=C grep -v -e $'^\xe2[\xa0-\xa3]' -e $'^\xf0\x9f\x8e\x89' || true
  echo "   $module: $(( $(date +%s) - module_started )) s"
done
echo "== mutation score ($(( $(date +%s) - started )) s in all)"
python scripts/mutation_report.py "${MODULES[@]}"
