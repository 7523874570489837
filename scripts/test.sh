#!/usr/bin/env bash
# The whole test suite: lint, strict typing, then pytest on SQLite AND PostgreSQL with
# branch coverage, which must reach the floors of pyproject.toml [tool.syncd.coverage-floors].
# In CI (CI=true) a missing PostgreSQL is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "PostgreSQL is down; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi
# Page tests drive Debian's Chromium (never a downloaded browser build). Install it when
# missing and we may (root with apt); in CI a missing browser then fails the browser tests.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Chromium is missing; installing Debian's chromium package"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || echo "could not install chromium: the browser tests will fail in CI" >&2
  else
    echo "Chromium is missing (apt-get install chromium); the browser tests will fail in CI" >&2
  fi
fi
export SYNCD_TEST_POSTGRES_URL="${SYNCD_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}"

echo "== ruff"; ruff check syncd mailchimp_emulator tests benchmarks
echo "== mypy --strict syncd mailchimp_emulator"; mypy syncd mailchimp_emulator
echo "== pytest, with branch coverage (both databases, every worker, the syncd subprocesses)"
# One data file at the root, whatever directory a subprocess runs in; pytest-cov combines
# the workers' and subprocesses' files into it and prints the uncovered lines once.
export COVERAGE_FILE="$PWD/.coverage"
rm -f .coverage .coverage.*
python -m pytest -n 2 --dist loadgroup -q --cov --cov-report=term-missing:skip-covered "$@"
echo "== branch coverage floors"
python scripts/coverage_floors.py
