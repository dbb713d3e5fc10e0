#!/usr/bin/env bash
# The README's curl walk-through, run as written against a real sessiond
# (only the address changes: a free port instead of 8080), then SIGTERM:
# the daemon must exit 0 after logging a clean stop.
set -euo pipefail
sessiond=$1
readme=$2
work=$(mktemp -d)
pid=""
cleanup() {
  [[ -z "$pid" ]] || kill -9 "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- output"; cat "$work/out" 2>/dev/null; echo "--- log"; cat "$work/log"; exit 1; }

# With USE_REDIS=true the same walk-through runs on the Redis store.
if [[ "${USE_REDIS:-}" == true ]]; then
  # shellcheck source=../smoke/require-service.sh
  source "$(dirname -- "${BASH_SOURCE[0]}")/../smoke/require-service.sh"
  require_service REDIS_URL redis-server
  export SESSIOND_REDIS_PREFIX="walk:$$:$RANDOM:"
fi

# shellcheck source=../../tools/start-sessiond.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../../tools/start-sessiond.sh"
start_sessiond "$sessiond" "$work/log" --events "$work/events.jsonl" || { pid=${SESSIOND_PID:-}; fail "sessiond did not start"; }
pid=$SESSIOND_PID
port=$SESSIOND_PORT

awk '/^```sh$/{f=1;next} /^```$/{if(f){exit}} f' "$readme" | sed "s/localhost:8080/127.0.0.1:$port/g" >"$work/walk.sh"
[[ $(grep -c curl "$work/walk.sh") -ge 8 ]] || fail "the README walk-through was not found"
bash -euo pipefail "$work/walk.sh" >"$work/out" || fail "the walk-through failed"

lines=$(wc -l <"$work/out")
[[ $lines -eq 8 ]] || fail "expected 8 JSON replies, got $lines lines"
python3 - "$work/out" <<'PY' || fail "replies are not what the README promises"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert r[0]["id"] == "alice-notebook" and r[0]["status"] == "active", r[0]
assert r[1]["owner"] == "alice", r[1]
assert r[2]["idle_deadline"] >= r[0]["idle_deadline"], r[2]
assert r[3]["status"] == "idle" and r[3]["attributes"]["kernel"] == "c++20", r[3]
assert [s["id"] for s in r[4]["sessions"]] == ["alice-notebook"] and r[4]["next_cursor"] is None, r[4]
assert r[5]["by_status"]["idle"] == 1, r[5]
assert r[6]["status"] == "terminated" and r[6]["end_reason"] == "logout", r[6]
assert r[7]["error"] == "invalid_id" and "no spaces" in r[7]["message"], r[7]
PY
grep -q '"type":"created","session_id":"alice-notebook"' "$work/events.jsonl" || fail "no created event"
grep -q '"type":"terminated","session_id":"alice-notebook"' "$work/events.jsonl" || fail "no terminated event"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[[ $status -eq 0 ]] || fail "sessiond exited $status on SIGTERM"
grep -q '"msg":"sessiond stopped"' "$work/log" || fail "no clean stop logged"
echo "README walk-through: ok"
