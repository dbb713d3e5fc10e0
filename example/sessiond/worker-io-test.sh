#!/usr/bin/env bash
# sessiond --spawner process end to end, over HTTP with curl: a session runs
# `sh`, input goes to its stdin, output (stdout and stderr) comes back by
# offset, an exit code fails the session, DELETE stops the worker, and no
# worker outlives the daemon. Bad spawner flags exit 2 naming the flag.
# With USE_REDIS=true the same runs on the Redis store (its output log).
set -euo pipefail
sessiond=$1
dir=$(mktemp -d)
pid=
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  [[ -n "${pid2:-}" ]] && kill "$pid2" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- events"; cat "$dir/events" 2>/dev/null; echo "--- log"; cat "$dir/log"; exit 1; }

if [[ "${USE_REDIS:-}" == true ]]; then
  # shellcheck source=../../test/smoke/require-service.sh
  source "$(dirname -- "${BASH_SOURCE[0]}")/../../test/smoke/require-service.sh"
  require_service REDIS_URL redis-server
  export SESSIOND_REDIS_PREFIX="worker-io:$$:$RANDOM:"
fi

# shellcheck source=../../tools/start-sessiond.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../../tools/start-sessiond.sh"
start_sessiond "$sessiond" "$dir/log" --events "$dir/events" --spawner process --worker-command sh \
  --worker-env GREETING=hi --stop-grace 1 --deployment io-test --output-limit 16 >/dev/null || fail "sessiond did not start"
pid=$SESSIOND_PID
port=$SESSIOND_PORT
api=http://127.0.0.1:$port/api/v1/sessions

code=$(curl -s -o "$dir/body" -w '%{http_code}' -X POST "$api" -H 'Content-Type: application/json' -d '{"id":"sh-1"}')
[[ $code == 201 ]] || fail "create: $code $(cat "$dir/body")"
grep -q '"kind":"process"' "$dir/body" || fail "the new session has no process worker: $(cat "$dir/body")"
worker_pid=$(sed -n 's/.*"id":"[^"]*:\([0-9]*\)".*/\1/p' "$dir/body")
[[ -n "$worker_pid" ]] && kill -0 "$worker_pid" || fail "worker pid '$worker_pid' does not run"

code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$api/sh-1/input" --data-binary $'echo "$GREETING $SESSIONKIT_SESSION_ID"; echo oops >&2\n')
[[ $code == 204 ]] || fail "input: $code"
want=$'hi sh-1\noops\n'
for _ in $(seq 100); do
  got=$(curl -s "$api/sh-1/output?from=0")
  [[ "$got" == "${want%$'\n'}" ]] && break
  sleep 0.05
done
[[ "$got" == "${want%$'\n'}" ]] || fail "output: '$got'"
next=$(curl -s -D - -o /dev/null "$api/sh-1/output?from=3" | tr -d '\r' | sed -n 's/^Sessionkit-Next-Offset: //p')
[[ $next == 13 ]] || fail "Sessionkit-Next-Offset: '$next', want 13"
code=$(curl -s -o "$dir/body" -w '%{http_code}' "$api/sh-1/output?from=99")
[[ $code == 400 ]] || fail "an offset past the end gave $code"

# On Redis the output is the store's: a second daemon sharing it (one that
# spawns nothing itself) reads what the first one's worker wrote.
if [[ "${USE_REDIS:-}" == true ]]; then
  start_sessiond "$sessiond" "$dir/log2" >/dev/null || fail "the second sessiond did not start"
  pid2=$SESSIOND_PID
  got2=$(curl -s "http://127.0.0.1:$SESSIOND_PORT/api/v1/sessions/sh-1/output?from=0")
  kill "$pid2"
  wait "$pid2" 2>/dev/null || true
  [[ "$got2" == "${want%$'\n'}" ]] || fail "output read through a second daemon: '$got2'"
fi

# A worker that exits with 3 fails its session, with a worker_exited event.
curl -s -o /dev/null -X POST "$api/sh-1/input" --data-binary $'exit 3\n'
for _ in $(seq 100); do
  status=$(curl -s "$api/sh-1" | sed -n 's/.*"status":"\([a-z_]*\)".*/\1/p')
  [[ $status == failed ]] && break
  sleep 0.05
done
[[ $status == failed ]] || fail "after exit 3 the session is '$status', not failed"
grep -q '"type":"worker_exited","session_id":"sh-1".*"exit_code":3' "$dir/events" || fail "no worker_exited event with exit_code 3"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$api/sh-1/input" --data-binary 'late')
[[ $code == 409 ]] || fail "input to an ended session gave $code"

# DELETE stops a running worker.
curl -s -o "$dir/body" -X POST "$api" -H 'Content-Type: application/json' -d '{"id":"sh-2"}'
worker2=$(sed -n 's/.*"id":"[^"]*:\([0-9]*\)".*/\1/p' "$dir/body")
kill -0 "$worker2" || fail "second worker does not run"
# --output-limit 16: of 41 bytes written, the newest 16 are kept, and a
# reader from 0 is told the rest were dropped.
curl -s -o /dev/null -X POST "$api/sh-2/input" --data-binary $'printf "%040d\\n" 7\n'
for _ in $(seq 100); do
  headers=$(curl -s -D - -o "$dir/out" "$api/sh-2/output?from=0" | tr -d '\r')
  grep -q '^Sessionkit-Next-Offset: 41$' <<<"$headers" && break
  sleep 0.05
done
grep -q '^Sessionkit-Next-Offset: 41$' <<<"$headers" || fail "sh-2 output did not reach 41 bytes: $headers"
grep -q '^Sessionkit-Offset: 25$' <<<"$headers" && grep -q '^Sessionkit-Dropped: true$' <<<"$headers" ||
  fail "--output-limit 16 kept more or told nothing: $headers"
[[ $(cat "$dir/out") == "$(printf %015d 7)" ]] || fail "kept output: '$(cat "$dir/out")'"
code=$(curl -s -o "$dir/body" -w '%{http_code}' -X DELETE "$api/sh-2")
[[ $code == 200 ]] && grep -q '"status":"terminated"' "$dir/body" || fail "delete: $code $(cat "$dir/body")"
! kill -0 "$worker2" 2>/dev/null || fail "worker $worker2 still runs after DELETE"

# A worker left running dies with the daemon, even on SIGKILL.
curl -s -o "$dir/body" -X POST "$api" -H 'Content-Type: application/json' -d '{"id":"sh-3"}'
worker3=$(sed -n 's/.*"id":"[^"]*:\([0-9]*\)".*/\1/p' "$dir/body")
kill -0 "$worker3" || fail "third worker does not run"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=
for _ in $(seq 100); do
  [[ ! -e /proc/$worker3 ]] || [[ $(awk '{print $3}' "/proc/$worker3/stat" 2>/dev/null) == Z ]] && break
  sleep 0.05
done
[[ ! -e /proc/$worker3 ]] || [[ $(awk '{print $3}' "/proc/$worker3/stat" 2>/dev/null) == Z ]] ||
  fail "worker $worker3 outlived a daemon killed with SIGKILL"

# Bad flags are refused at start, by name.
set +e
"$sessiond" --spawner process >/dev/null 2>"$dir/err"; rc=$?
set -e
[[ $rc == 2 ]] && grep -q -- "--worker-command" "$dir/err" || fail "--spawner process without a command: rc $rc, $(cat "$dir/err")"
set +e
"$sessiond" --output-limit 0 >/dev/null 2>"$dir/err"; rc=$?
set -e
[[ $rc == 2 ]] && grep -q -- "--output-limit" "$dir/err" || fail "--output-limit 0: rc $rc, $(cat "$dir/err")"
set +e
"$sessiond" --spawner docker-ish >/dev/null 2>"$dir/err"; rc=$?
set -e
[[ $rc == 2 ]] && grep -q "docker-ish" "$dir/err" || fail "an unknown spawner: rc $rc"
set +e
"$sessiond" --spawner process --worker-command no-such-program-x --run-for 1 >/dev/null 2>"$dir/err"; rc=$?
set -e
[[ $rc != 0 ]] && grep -q "no-such-program-x" "$dir/err" || fail "a missing worker command: rc $rc, $(cat "$dir/err")"
echo "sessiond worker io: ok"
