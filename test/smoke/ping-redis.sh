#!/usr/bin/env bash
# Smoke test: the redis fixture answers PING with PONG at $REDIS_URL.
set -euo pipefail

# shellcheck source=require-service.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/require-service.sh"
require_service REDIS_URL redis

reply=$(redis-cli -u "$REDIS_URL" ping)
if [[ "$reply" != PONG ]]; then
  echo "FAIL: PING to $REDIS_URL returned '$reply', expected PONG"
  exit 1
fi
# A write/read round trip catches a read-only or wrong-database server.
key=sessionkit:smoke:$$
redis-cli -u "$REDIS_URL" set "$key" hello EX 60 >/dev/null
value=$(redis-cli -u "$REDIS_URL" get "$key")
redis-cli -u "$REDIS_URL" del "$key" >/dev/null
if [[ "$value" != hello ]]; then
  echo "FAIL: GET $key returned '$value', expected hello"
  exit 1
fi
echo "OK: redis at $REDIS_URL"
