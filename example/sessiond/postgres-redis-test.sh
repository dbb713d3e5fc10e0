#!/usr/bin/env bash
# sessiond --store postgres+redis over HTTP (PostgreSQL at DATABASE_URL
# behind the Redis at REDIS_URL), on a fresh --pg-schema and key prefix:
#  - the new flags are checked (bad values exit 2 naming them; they are
#    refused with another store);
#  - create, get (the second from the cache: /metrics counts a hit), touch
#    (absorbed by the cache), patch, delete (terminate); /healthz names the
#    store;
#  - with --touch-coalesce 0 every touch reaches PostgreSQL;
#  - the cache's keys flushed from Redis and sessiond SIGKILLed and started
#    again: every session and its event history come back from PostgreSQL
#    (the events reach the --events file once each).
set -euo pipefail
sessiond=$1
here=$(dirname -- "${BASH_SOURCE[0]}")
# shellcheck source=../../test/smoke/require-service.sh
source "$here/../../test/smoke/require-service.sh"
require_service DATABASE_URL postgres
require_service REDIS_URL redis
# shellcheck source=../../tools/start-sessiond.sh
source "$here/../../tools/start-sessiond.sh"

dir=$(mktemp -d)
schema="sessiond_wt_$$_$RANDOM"
prefix="sktest:wt$$$RANDOM:"
pids=()
cleanup() {
  local p
  exec 2>/dev/null
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  { wait; } 2>/dev/null || true
  if command -v psql >/dev/null; then
    psql -q "$DATABASE_URL" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  local f
  for f in "$dir"/log-* "$dir"/events*; do
    [[ -f "$f" ]] || continue
    echo "--- ${f##*/}"
    tail -30 "$f"
  done
  exit 1
}
expect_refusal() {  # STATUS TEXT sessiond-args...
  local want=$1 text=$2 code=0
  shift 2
  "$sessiond" "$@" >/dev/null 2>"$dir/err" || code=$?
  [[ $code == "$want" ]] || fail "sessiond $* exited $code, expected $want: $(cat "$dir/err")"
  grep -qF -- "$text" "$dir/err" || fail "sessiond $*: the error does not name '$text': $(cat "$dir/err")"
}
metric() {  # URL NAME
  curl -sf "$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'
}

expect_refusal 2 "--on-cache-down" --store postgres+redis --on-cache-down maybe
expect_refusal 2 "--on-primary-down" --store postgres+redis --on-primary-down later
expect_refusal 2 "--touch-coalesce" --store postgres+redis --touch-coalesce -1
expect_refusal 2 "apply to --store postgres+redis only" --store postgres --on-cache-down fail
"$sessiond" --version | grep -q 'postgres+redis' || fail "--version: $("$sessiond" --version)"

common=(--store postgres+redis --pg-schema "$schema" --redis-prefix "$prefix" --redis-url "$REDIS_URL"
  --relay-lease 1 --relay-poll 0.05 --events "jsonl:$dir/events.jsonl")
start_sessiond "$sessiond" "$dir/log-a" "${common[@]}" >/dev/null || fail "sessiond did not start"
a_pid=$SESSIOND_PID
pids+=("$a_pid")
a=http://127.0.0.1:$SESSIOND_PORT

[[ $(curl -sf "$a/healthz") == '{"status":"ok","store":"postgres+redis"}' ]] || fail "/healthz: $(curl -s "$a/healthz")"
for i in 1 2 3; do
  curl -sf -X POST "$a/api/v1/sessions" -H 'content-type: application/json' \
    -d "{\"id\":\"wt-$i\",\"owner\":\"alice\",\"attributes\":{\"n\":$i}}" >/dev/null || fail "create wt-$i"
done
curl -sf "$a/api/v1/sessions/wt-1" >/dev/null || fail "get wt-1"
curl -sf "$a/api/v1/sessions/wt-1" >/dev/null || fail "get wt-1 again"
hits=$(metric "$a" sessionkit_cache_hits_total)
[[ -n "$hits" && "$hits" -ge 1 ]] || fail "no cache hit counted: $(curl -s "$a/metrics" | grep cache)"
[[ $(metric "$a" sessionkit_cache_in_use) == 1 ]] || fail "the cache is not in use"
curl -sf -X POST "$a/api/v1/sessions/wt-2/touch" >/dev/null || fail "touch wt-2"
[[ $(metric "$a" sessionkit_touches_cached_total) -ge 1 ]] || fail "the touch did not stay in the cache"
curl -sf -X PATCH "$a/api/v1/sessions/wt-2" -H 'content-type: application/json' -d '{"status":"idle"}' \
  >/dev/null || fail "patch wt-2"
curl -sf -X DELETE "$a/api/v1/sessions/wt-3" >/dev/null || fail "delete wt-3"

# ---- the cache flushed, sessiond killed and started again -----------------
redis-cli -u "$REDIS_URL" --scan --pattern "${prefix}cache:*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null
kill -9 "$a_pid"
start_sessiond "$sessiond" "$dir/log-b" "${common[@]}" --touch-coalesce 0 >/dev/null ||
  fail "sessiond did not start again"
pids+=("$SESSIOND_PID")
b=http://127.0.0.1:$SESSIOND_PORT
got=$(curl -sf "$b/api/v1/sessions/wt-1") || fail "wt-1 is gone after the flush and the restart"
grep -q '"n":1' <<<"$got" || fail "wt-1 lost its attributes: $got"
grep -q '"status":"idle"' <<<"$(curl -sf "$b/api/v1/sessions/wt-2")" || fail "wt-2 lost its status"
grep -q '"status":"terminated"' <<<"$(curl -sf "$b/api/v1/sessions/wt-3")" || fail "wt-3 is not terminated"
[[ $(metric "$b" sessionkit_cache_misses_total) -ge 1 ]] || fail "the reads after the flush did not miss"
# --touch-coalesce 0: every touch reaches PostgreSQL.
curl -sf -X POST "$b/api/v1/sessions/wt-1/touch" >/dev/null || fail "touch wt-1"
[[ $(metric "$b" sessionkit_touches_written_through_total) -ge 1 ]] || fail "the touch did not reach PostgreSQL"

# The event history survived in PostgreSQL: every event reaches the file
# once (3 created, 1 status_changed, 1 terminated), whichever sessiond
# published it.
for _ in $(seq 100); do
  [[ $(grep -c . "$dir/events.jsonl" 2>/dev/null || echo 0) -ge 5 ]] && break
  sleep 0.1
done
python3 - "$dir/events.jsonl" <<'PY' || fail "the events are not each there once"
import json, sys, collections
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ids = collections.Counter(e["id"] for e in events)
assert all(n == 1 for n in ids.values()), ids
types = collections.Counter(e["type"] for e in events)
assert types["created"] == 3 and types["status_changed"] >= 1 and types["terminated"] == 1, types
PY
echo "ok: postgres+redis"
