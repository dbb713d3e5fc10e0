#!/usr/bin/env bash
# Two sessiond --store redis --spawner process on one Redis, driven over
# HTTP as a load balancer would (issue 12, defects 5, 6 and 7):
#  - 200 concurrent get-or-create POSTs of one id, split across both: every
#    answer carries the session's worker (none says "active" without one);
#  - PATCHes racing a spawn cannot move the session out of initializing:
#    every session ends up active with its worker running;
#  - a DELETE through the daemon that did not spawn the worker stops it
#    within a couple of seconds (the owner's worker check), not a janitor
#    interval later.
set -euo pipefail
sessiond=$1
here=$(dirname -- "${BASH_SOURCE[0]}")
# shellcheck source=../../test/smoke/require-service.sh
source "$here/../../test/smoke/require-service.sh"
require_service REDIS_URL redis-server
# shellcheck source=../../tools/start-sessiond.sh
source "$here/../../tools/start-sessiond.sh"

dir=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- log a"; tail -20 "$dir/log-a"
  echo "--- log b"; tail -20 "$dir/log-b"
  exit 1
}

export SESSIOND_REDIS_PREFIX="two-daemons:$$:$RANDOM:"
# The worker waits on its stdin: it lives until it is stopped.
common=(--store redis --spawner process --worker-command cat --stop-grace 1 --deployment two-daemons)
start_sessiond "$sessiond" "$dir/log-a" "${common[@]}" >/dev/null || fail "sessiond a did not start"
pids+=("$SESSIOND_PID")
a=http://127.0.0.1:$SESSIOND_PORT/api/v1/sessions
start_sessiond "$sessiond" "$dir/log-b" "${common[@]}" >/dev/null || fail "sessiond b did not start"
pids+=("$SESSIOND_PID")
b=http://127.0.0.1:$SESSIOND_PORT/api/v1/sessions

worker_pid_of() { sed -n 's/.*"worker":{[^}]*"id":"[^"]*:\([0-9]*\)".*/\1/p' "$1"; }

# ---- defect 5: concurrent get-or-create across two daemons ----------------
rounds=${ROUNDS:-30}  # the race shows in about one round in 20 on the old registry
per_round=200
for round in $(seq "$rounds"); do
  id="race-$round"
  mkdir -p "$dir/r$round"
  # One curl running every request at once (--parallel), so that they
  # arrive together, as from a busy front end.
  : >"$dir/r$round/config"
  for i in $(seq "$per_round"); do
    if ((i % 2)); then url=$a; else url=$b; fi
    ((i == 1)) || echo next >>"$dir/r$round/config"
    printf 'url = "%s"\noutput = "%s"\nrequest = "POST"\nheader = "Content-Type: application/json"\ndata = "{\\"id\\":\\"%s\\"}"\nwrite-out = "%%{http_code}\\n"\n' \
      "$url" "$dir/r$round/$i" "$id" >>"$dir/r$round/config"
  done
  curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max "$per_round" --config "$dir/r$round/config" >"$dir/r$round/codes" 2>/dev/null
  created=0
  while read -r code; do
    case $code in
      201) created=$((created + 1)) ;;
      200) ;;
      *) fail "round $round: a POST answered $code" ;;
    esac
  done <"$dir/r$round/codes"
  [[ $(wc -l <"$dir/r$round/codes") == "$per_round" ]] || fail "round $round: $(wc -l <"$dir/r$round/codes") answers"
  for i in $(seq "$per_round"); do
    body=$(cat "$dir/r$round/$i")
    grep -q '"worker":{"kind":"process"' <<<"$body" ||
      fail "round $round, request $i: an answer without the worker: $body"
  done
  ((created == 1)) || fail "round $round: $created creations of one id"
  worker=$(worker_pid_of "$dir/r$round/1")
  [[ -n "$worker" ]] && kill -0 "$worker" || fail "round $round: worker '$worker' does not run"
done
echo "get-or-create: $rounds rounds of $per_round concurrent POSTs over two daemons, every answer with its worker"

# ---- defect 6: a status PATCH racing the spawn ----------------------------
for n in $(seq 10); do
  id="patched-$n"
  curl -s -o "$dir/p$n" -X POST "$a" -H 'Content-Type: application/json' -d "{\"id\":\"$id\"}" &
  racing=($!)
  for k in $(seq 30); do
    if ((k % 2)); then url=$a; else url=$b; fi
    curl -s -o /dev/null -w '%{http_code}\n' -X PATCH "$url/$id" -H 'Content-Type: application/json' \
      -d '{"status":"active"}' >>"$dir/patch-codes" &
    racing+=($!)
  done
  wait "${racing[@]}"  # not the daemons
  body=$(curl -s "$a/$id")
  grep -q '"status":"active"' <<<"$body" || fail "$id: not active after the race: $body"
  grep -q '"worker":{"kind":"process"' <<<"$body" || fail "$id: active with no worker: $body"
  echo "$body" >"$dir/p$n.now"
  worker=$(worker_pid_of "$dir/p$n.now")
  [[ -n "$worker" ]] && kill -0 "$worker" || fail "$id: its worker '$worker' was stopped"
done
bad=$(grep -cvE '^(200|404|409)$' "$dir/patch-codes" || true)
((bad == 0)) || fail "PATCHes racing a spawn answered: $(sort "$dir/patch-codes" | uniq -c | tr '\n' ' ')"
echo "PATCH during spawn: answers $(sort "$dir/patch-codes" | uniq -c | tr -s ' \n' ' '), every session kept its worker"

# ---- defect 7: DELETE through the daemon that did not spawn the worker ----
# Past each janitor's first sweep (within jitter x interval = 1 s of its
# start), which reconciles: what stops the worker must be the worker check,
# not that sweep.
sleep 1.5
code=$(curl -s -o "$dir/owned" -w '%{http_code}' -X POST "$a" -H 'Content-Type: application/json' -d '{"id":"owned-by-a"}')
[[ $code == 201 ]] || fail "create owned-by-a: $code $(cat "$dir/owned")"
worker=$(worker_pid_of "$dir/owned")
[[ -n "$worker" ]] && kill -0 "$worker" || fail "owned-by-a's worker '$worker' does not run"
code=$(curl -s -o "$dir/deleted" -w '%{http_code}' -X DELETE "$b/owned-by-a?reason=elsewhere")
[[ $code == 200 ]] && grep -q '"status":"terminated"' "$dir/deleted" || fail "delete through b: $code $(cat "$dir/deleted")"
start=$(date +%s%N)
for _ in $(seq 100); do
  kill -0 "$worker" 2>/dev/null || break
  sleep 0.05
done
! kill -0 "$worker" 2>/dev/null || fail "worker $worker still runs 5 s after its session was deleted through the other daemon"
echo "DELETE through the other daemon: worker stopped after $((($(date +%s%N) - start) / 1000000)) ms"
echo "sessiond two daemons: ok"
