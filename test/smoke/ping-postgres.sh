#!/usr/bin/env bash
# Smoke test: the postgres fixture accepts connections at $DATABASE_URL and
# runs a query in the "sessionkit" database.
set -euo pipefail

if [[ -z "${DATABASE_URL:-}" ]]; then
  # No env file: the service was skipped (not installed). That is only
  # acceptable on a developer machine; 77 = ctest SKIP_RETURN_CODE.
  if [[ -n "${CI:-}" ]]; then
    echo "FAIL: DATABASE_URL not set (service not started)"
    exit 1
  fi
  echo "SKIP: DATABASE_URL not set (postgres not installed?)"
  exit 77
fi

reply=$(psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qAt -c 'select 1')
if [[ "$reply" != 1 ]]; then
  echo "FAIL: 'select 1' on $DATABASE_URL returned '$reply', expected 1"
  exit 1
fi
db=$(psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qAt -c 'select current_database()')
if [[ "$db" != sessionkit ]]; then
  echo "FAIL: connected to database '$db', expected sessionkit"
  exit 1
fi
echo "OK: postgres at $DATABASE_URL"
