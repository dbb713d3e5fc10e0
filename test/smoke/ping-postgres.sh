#!/usr/bin/env bash
# Smoke test: the postgres fixture accepts connections at $DATABASE_URL and
# runs a query in the "sessionkit" database.
set -euo pipefail

# shellcheck source=require-service.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/require-service.sh"
require_service DATABASE_URL postgres

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
