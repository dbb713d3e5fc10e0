#!/usr/bin/env bash
# The command lines of doc/compositions.md that run on sessiond alone:
#  (b) provider/model sessions: --store redis --redis-prefix sentinel:session:
#      --idle-timeout 86400. A session made with the provider and the model
#      as attributes is in Redis under sentinel:session: (nothing of it
#      under session:), its deadline is 24 h after its last use, a touch
#      slides it, the attributes read back;
#  (d) the store chosen by USE_REDIS: unset (or false) → memory, true →
#      redis (/healthz names it; the session is in Redis only then).
set -euo pipefail
sessiond=$1
here=$(dirname -- "${BASH_SOURCE[0]}")
# shellcheck source=../../test/smoke/require-service.sh
source "$here/../../test/smoke/require-service.sh"
require_service REDIS_URL redis
# shellcheck source=../../tools/start-sessiond.sh
source "$here/../../tools/start-sessiond.sh"

dir=$(mktemp -d)
pids=()
cleanup() {
  local p
  exec 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  { wait; } 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  local f
  for f in "$dir"/log-*; do
    [[ -f "$f" ]] || continue
    echo "--- ${f##*/}"
    tail -20 "$f"
  done
  exit 1
}
redis() { redis-cli -u "$REDIS_URL" "$@"; }
field() {  # JSON FIELD: a number or string field of a flat JSON answer
  python3 -c 'import json, sys; v = json.loads(sys.argv[1]); print(eval("v" + sys.argv[2]))' "$1" "$2"
}

# ---- (b) sentinel:session:, 24 h sliding, provider and model attributes ----
unset USE_REDIS
start_sessiond "$sessiond" "$dir/log-b" --store redis --redis-url "$REDIS_URL" \
  --redis-prefix sentinel:session: --idle-timeout 86400 >/dev/null || fail "sessiond (b) did not start"
pids+=("$SESSIOND_PID")
api=http://127.0.0.1:$SESSIOND_PORT/api/v1/sessions
id="sktest-sentinel-$$-$RANDOM"
got=$(curl -sf -X POST "$api" -H 'Content-Type: application/json' \
  -d "{\"id\":\"$id\",\"owner\":\"alice\",\"attributes\":{\"provider\":\"openai\",\"model\":\"gpt-4o\"}}") ||
  fail "create $id"
[[ $(field "$got" '["idle_deadline"] - v["last_active"]') == 86400000 ]] || fail "the deadline is not 24 h out: $got"
keys=$(redis --scan --pattern "*$id*")
[[ -n "$keys" ]] || fail "no key of $id in Redis"
while read -r k; do
  [[ $k == sentinel:session:* ]] || fail "key $k is not under sentinel:session:"
done <<<"$keys"
key=$(grep ':s:' <<<"$keys")
[[ $(redis exists "$key") == 1 ]] || fail "no record at $key"
for idx in live ids; do
  base=${key%%s:"$id"}
  [[ -n $(redis zscore "${base}$idx" "$id") ]] || fail "$id is not in ${base}$idx"
  default_base=session:${base#sentinel:session:}
  [[ -z $(redis zscore "${default_base}$idx" "$id") ]] || fail "$id is in ${default_base}$idx"
done
before=$(field "$got" '["idle_deadline"]')
sleep 0.05
touched=$(curl -sf -X POST "$api/$id/touch") || fail "touch $id"
after=$(field "$touched" '["idle_deadline"]')
[[ $after -gt $before ]] || fail "the touch did not slide the deadline: $before → $after"
[[ $(field "$touched" '["idle_deadline"] - v["last_active"]') == 86400000 ]] || fail "touch: $touched"
[[ $(redis hget "$key" idle_deadline) == "$after" ]] || fail "Redis holds another deadline than $after"
got=$(curl -sf "$api/$id") || fail "get $id"
[[ $(field "$got" '["attributes"]["provider"]') == openai && $(field "$got" '["attributes"]["model"]') == gpt-4o ]] ||
  fail "the attributes did not round-trip: $got"
curl -sf -X DELETE "$api/$id" >/dev/null || fail "delete $id"

# ---- (d) USE_REDIS picks the store ----------------------------------------
prefix="sktest:useredis:$$:$RANDOM:"
for use in unset false true; do
  if [[ $use == unset ]]; then unset USE_REDIS; else export USE_REDIS=$use; fi
  start_sessiond "$sessiond" "$dir/log-d-$use" --redis-url "$REDIS_URL" --redis-prefix "$prefix" >/dev/null ||
    fail "sessiond (USE_REDIS=$use) did not start"
  pids+=("$SESSIOND_PID")
  base=http://127.0.0.1:$SESSIOND_PORT
  want=memory
  [[ $use == true ]] && want=redis
  [[ $(curl -sf "$base/healthz") == "{\"status\":\"ok\",\"store\":\"$want\"}" ]] ||
    fail "USE_REDIS=$use: /healthz $(curl -s "$base/healthz")"
  curl -sf -X POST "$base/api/v1/sessions" -H 'Content-Type: application/json' -d "{\"id\":\"d-$use\"}" \
    >/dev/null || fail "USE_REDIS=$use: create"
  in_redis=$(redis --scan --pattern "${prefix}*:s:d-$use" | wc -l)
  [[ $in_redis == $([[ $want == redis ]] && echo 1 || echo 0) ]] ||
    fail "USE_REDIS=$use: $in_redis records of d-$use in Redis"
  kill "$SESSIOND_PID"
done
echo "ok: compositions (b) and (d) from the command line"
