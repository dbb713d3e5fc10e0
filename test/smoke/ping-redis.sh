#!/usr/bin/env bash
# Smoke test: the redis fixture answers PING with PONG at $REDIS_URL.
set -euo pipefail

if [[ -z "${REDIS_URL:-}" ]]; then
  # No env file: the service was skipped (not installed). That is only
  # acceptable on a developer machine; 77 = ctest SKIP_RETURN_CODE.
  if [[ -n "${CI:-}" ]]; then
    echo "FAIL: REDIS_URL not set (service not started)"
    exit 1
  fi
  echo "SKIP: REDIS_URL not set (redis not installed?)"
  exit 77
fi

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
