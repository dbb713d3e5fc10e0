#!/usr/bin/env bash
# End-to-end check of ghostd against the redis of the ctest fixture
# ($REDIS_URL): it registers its key with our pid and a TTL, refreshes it
# every ttl/3, deletes it on SIGTERM and exits 0; an unreachable Redis ends
# it at once (exit 1, naming the URL); a bad flag exits 2 naming the flag;
# and stopping never deletes a key that another owner has written since.
set -euo pipefail
ghostd=$1
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../../test/smoke/require-service.sh
source "$here/../../test/smoke/require-service.sh"
require_service REDIS_URL redis

# redis://[user[:pass]@]host[:port][/db] -> redis-cli -h host -p port -n db
if [[ ! "$REDIS_URL" =~ ^redis://([^@/]*@)?([^:/@]+)(:([0-9]+))?(/([0-9]+))?/?$ ]]; then
  echo "FAIL: cannot read host and port from REDIS_URL=$REDIS_URL"
  exit 1
fi
rhost=${BASH_REMATCH[2]}
rport=${BASH_REMATCH[4]:-6379}
rdb=${BASH_REMATCH[6]:-0}
rcli() { redis-cli -h "$rhost" -p "$rport" -n "$rdb" --raw "$@"; }

work=$(mktemp -d)
pids=()
keys=()
cleanup() {
  local p k
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for k in "${keys[@]}"; do rcli del "$k" >/dev/null 2>&1 || true; done
  rm -rf -- "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  local f
  for f in "$work"/*.log; do
    [[ -e "$f" ]] || continue
    echo "--- ${f##*/}"
    cat -- "$f"
  done
  exit 1
}
now_ms() { date +%s%3N; }

# wait_for_key KEY PID: until KEY exists (at most 10 s), while PID runs.
wait_for_key() {
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(rcli exists "$1") == 1 ]] && return 0
    kill -0 "$2" 2>/dev/null || fail "ghostd (pid $2) exited before writing $1"
    sleep 0.1
  done
  fail "key $1 did not appear within 10 s"
}

# start_ghostd NAME TTL LOG: a ghostd in the background (stderr to LOG),
# registered for cleanup, once its key exists; its key and pid in
# started_key and started_pid.
start_ghostd() {
  started_key=ghost:session:$1
  keys+=("$started_key")
  "$ghostd" --ttl "$2" --name "$1" --redis-url "$REDIS_URL" 2>"$3" &
  started_pid=$!
  pids+=("$started_pid")
  wait_for_key "$started_key" "$started_pid"
}

# stop_ghostd PID: SIGTERM, then its exit status in stop_rc (not through
# $(...): a subshell cannot wait for our child). Fails after 10 s.
stop_ghostd() {
  local i
  kill -TERM "$1"
  for ((i = 0; i < 100; i++)); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$1" 2>/dev/null && fail "ghostd (pid $1) still running 10 s after SIGTERM"
  stop_rc=0
  wait "$1" || stop_rc=$?
}

# Reads the key's value into the globals v_pid and v_time; fails unless it
# is the JSON ghostd writes.
read_value() {
  local value
  value=$(rcli get "$1")
  if [[ ! "$value" =~ ^\{\"pid\":([0-9]+),\"time\":([0-9]+)\}$ ]]; then
    fail "value of $1 is not {\"pid\":N,\"time\":N}: '$value'"
  fi
  if command -v jq >/dev/null 2>&1; then
    jq -e 'type == "object"' <<<"$value" >/dev/null || fail "value of $1 is not JSON: '$value'"
  fi
  v_pid=${BASH_REMATCH[1]}
  v_time=${BASH_REMATCH[2]}
}

# ---- 1. register, refresh, delete on SIGTERM --------------------------------
name=test-$RANDOM$RANDOM-$$
start_ghostd "$name" 3 "$work/ghostd.log"
key=$started_key pid=$started_pid

read_value "$key"
[[ $v_pid == "$pid" ]] || fail "value names pid $v_pid, ghostd is $pid"
t=$(now_ms)
((v_time <= t + 1000 && v_time >= t - 10000)) || fail "time $v_time is not recent (now $t)"
first_time=$v_time
pttl=$(rcli pttl "$key")
((pttl > 0 && pttl <= 3000)) || fail "PTTL $pttl not in (0, 3000]"

# Refreshed every 1 s: after 1.5 s the time is newer and the TTL was reset
# (without a refresh it would be below 1500 ms by now).
sleep 1.5
read_value "$key"
[[ $v_pid == "$pid" ]] || fail "after a refresh the value names pid $v_pid, ghostd is $pid"
((v_time > first_time)) || fail "time not refreshed after 1.5 s ($v_time, first $first_time)"
pttl=$(rcli pttl "$key")
((pttl > 1500 && pttl <= 3000)) || fail "PTTL $pttl after 1.5 s: the TTL was not reset"

stop_ghostd "$pid"
[[ $stop_rc == 0 ]] || fail "ghostd exited $stop_rc after SIGTERM, expected 0"
[[ $(rcli exists "$key") == 0 ]] || fail "key $key still exists after SIGTERM"
grep -q '"msg":"ghostd started"' "$work/ghostd.log" || fail "no 'ghostd started' log line"
grep -q '"msg":"ghostd stopped"' "$work/ghostd.log" || fail "no 'ghostd stopped' log line"
grep -q '"key_outcome":"deleted"' "$work/ghostd.log" || fail "the stop line does not say the key was deleted"
echo "ok: registered, refreshed, deleted on SIGTERM"

# ---- 2. Redis unreachable at start ------------------------------------------
rc=0
timeout 5 "$ghostd" --name "$name" --redis-url redis://127.0.0.1:1/0 2>"$work/unreachable.log" || rc=$?
((rc != 124)) || fail "ghostd with an unreachable Redis still ran after 5 s"
[[ $rc == 1 ]] || fail "ghostd with an unreachable Redis exited $rc, expected 1"
grep -q 'redis://127.0.0.1:1/0' "$work/unreachable.log" || fail "the error does not name redis://127.0.0.1:1/0"
[[ $(wc -l <"$work/unreachable.log") == 1 ]] || fail "expected one line on stderr for an unreachable Redis"
echo "ok: unreachable Redis: exit 1 naming the URL"

# ---- 3. a bad flag ------------------------------------------------------------
rc=0
"$ghostd" --ttl -1 --name "$name" >/dev/null 2>"$work/badflag.log" || rc=$?
[[ $rc == 2 ]] || fail "--ttl -1 exited $rc, expected 2"
grep -q -- '--ttl' "$work/badflag.log" || fail "the error for --ttl -1 does not name --ttl"
echo "ok: --ttl -1: exit 2 naming --ttl"

# ---- 4. another owner's key survives our stop -------------------------------
# A long TTL (refresh every 20 s) so no refresh rewrites the key between our
# overwrite and the SIGTERM.
name2=test-$RANDOM$RANDOM-$$-other
start_ghostd "$name2" 60 "$work/owner.log"
key2=$started_key pid2=$started_pid
other='{"pid":1,"time":0}'
[[ $(rcli set "$key2" "$other" PX 60000) == OK ]] || fail "could not overwrite $key2"
stop_ghostd "$pid2"
[[ $stop_rc == 0 ]] || fail "ghostd exited $stop_rc after SIGTERM, expected 0"
[[ $(rcli get "$key2") == "$other" ]] || fail "another owner's value of $key2 was deleted or changed"
grep -q '"key_outcome":"kept: held by another owner"' "$work/owner.log" || fail "the stop line does not say the key was kept"
echo "ok: another owner's key kept"

echo "ghostd: ok"
