#!/usr/bin/env bash
# The agent-session walk (issue 16; doc/compositions.md, e): sessiond
# --store postgres+redis --events nats --spawner process running an echo
# agent (cat), driven over HTTP as a client would:
#  - the session's lifecycle events followed as server-sent events
#    (GET /api/v1/events?follow=1&session=ID) from before it exists;
#  - the session created; its output followed as server-sent events
#    (GET .../output?follow=1); input posted; the echo arrives on the
#    stream; a second input with multi-byte UTF-8 characters arrives as
#    text;
#  - left idle, it gets its timeout_warning and then expires: the output
#    stream ends with `event: end` (terminated, idle), the worker process is
#    gone;
#  - in JetStream (a private nats-server; stream read back whole with
#    stream_tool), the session's events are created, worker_started,
#    input_sent (twice, with the byte counts), timeout_warning, expired, in
#    that order, each once; the SSE event stream saw the same events, and a
#    follower reconnecting with Last-Event-ID gets what came after that
#    event.
set -euo pipefail
sessiond=$1
stream_tool=$2
here=$(dirname -- "${BASH_SOURCE[0]}")
# shellcheck source=../../test/smoke/require-service.sh
source "$here/../../test/smoke/require-service.sh"
require_service DATABASE_URL postgres
require_service REDIS_URL redis
# shellcheck source=../../tools/start-sessiond.sh
source "$here/../../tools/start-sessiond.sh"

nats_server=$(command -v nats-server || true)
if [[ -z "$nats_server" ]]; then
  if [[ -n "${CI:-}" ]]; then
    echo "FAIL: nats-server is not installed (CI is set)"
    exit 1
  fi
  echo "SKIP: nats-server is not installed"
  exit 77
fi

dir=$(mktemp -d)
schema="sessiond_agent_$$_$RANDOM"
prefix="sktest:agent$$$RANDOM:"
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
  for f in "$dir"/log-* "$dir"/sse-* "$dir"/stream; do
    [[ -f "$f" ]] || continue
    echo "--- ${f##*/}"
    tail -40 "$f"
  done
  exit 1
}
wait_for() {  # SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2 _
  shift 2
  for _ in $(seq $((limit * 20))); do
    "$@" && return 0
    sleep 0.05
  done
  fail "waited ${limit}s for $what"
}

# ---- a private nats-server with JetStream ------------------------------------
nats_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$nats_server" -a 127.0.0.1 -p "$nats_port" -js -sd "$dir/jetstream" >"$dir/log-nats" 2>&1 &
pids+=($!)
nats_url="nats://127.0.0.1:$nats_port"
wait_for 10 "nats-server" bash -c "exec 3<>/dev/tcp/127.0.0.1/$nats_port" 2>/dev/null

start_sessiond "$sessiond" "$dir/log-sessiond" --store postgres+redis --pg-schema "$schema" \
  --redis-prefix "$prefix" --events nats --nats-url "$nats_url" --relay-poll 0.05 \
  --spawner process --worker-command cat --stop-grace 1 --deployment "agent-$$" \
  --idle-timeout 4 --warning-window 2.5 --janitor-interval 0.3 || fail "sessiond did not start"
pids+=("$SESSIOND_PID")
api="http://127.0.0.1:$SESSIOND_PORT/api/v1"
id="agent-1"

# Followed from before the session exists: nothing of it is missed.
curl -sN "$api/events?follow=1&session=$id" >"$dir/sse-events" &
pids+=($!)
sleep 0.3

code=$(curl -s -o "$dir/created" -w '%{http_code}' -X POST "$api/sessions" -H 'Content-Type: application/json' \
  -d "{\"id\":\"$id\",\"owner\":\"alice\"}")
[[ $code == 201 ]] || fail "create answered $code: $(cat "$dir/created")"
grep -q '"status":"active"' "$dir/created" || fail "the session is not active with its agent: $(cat "$dir/created")"
# A process worker's id is <host>:<sessiond pid>:<worker pid>.
worker_pid=$(grep -o '"id":"[^"]*:[0-9]*:[0-9]*"' "$dir/created" | head -1 | grep -o '[0-9]*"$' | tr -d '"')
[[ -n "$worker_pid" ]] && kill -0 "$worker_pid" 2>/dev/null || fail "no running agent process in $(cat "$dir/created")"

curl -sN "$api/sessions/$id/output?follow=1" >"$dir/sse-output" &
pids+=($!)
sleep 0.2

send() {  # BYTES
  local code
  code=$(curl -s -o "$dir/answer" -w '%{http_code}' -X POST "$api/sessions/$id/input" \
    -H 'Content-Type: application/octet-stream' --data-binary "$1")
  [[ $code == 204 ]] || fail "input answered $code: $(cat "$dir/answer")"
}
send $'hello agent\n'
wait_for 10 "the echo on the output stream" grep -q '"text":"hello agent\\n"' "$dir/sse-output"
send $'caf\xc3\xa9 \xe2\x82\xac\n'
wait_for 10 "the second echo, as text" grep -q '"text":"café €\\n"' "$dir/sse-output"

# Left idle: warned, then expired. The output stream ends by itself.
wait_for 15 "the end of the output stream" grep -q '^event: end' "$dir/sse-output"
grep -A1 '^event: end' "$dir/sse-output" | grep -q '"status":"terminated","end_reason":"idle"' ||
  fail "the output stream did not end with the session terminated as idle"
grep -q '"next_offset":22,' "$dir/sse-output" || fail "the output stream's offsets do not add up to 22 bytes"
wait_for 10 "the agent process to be gone" bash -c "! kill -0 $worker_pid 2>/dev/null"

# ---- the events: in JetStream, and on the SSE stream ------------------------------
want="created worker_started input_sent input_sent timeout_warning expired"
only_ours() {  # the session's events of the types of the walk, in order
  python3 -c '
import json, sys
wanted = set(sys.argv[2].split())
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("data: "):
        line = line[6:]
    elif not line.startswith("{"):
        continue
    o = json.loads(line)
    e = json.loads(o["data"]) if "seq" in o and "data" in o else o
    if not isinstance(e, dict) or e.get("session_id") != sys.argv[3] or e.get("type") not in wanted:
        continue
    extra = " %d" % e["data"]["bytes"] if e["type"] == "input_sent" else ""
    print(e["type"] + extra, e["id"])
' "$1" "$want" "$id"
}
in_stream() {
  "$stream_tool" dump "$nats_url" SESSIONS >"$dir/stream" 2>"$dir/stream-err" || return 1
  [[ $(only_ours "$dir/stream" | wc -l) -ge 6 ]]
}
wait_for 15 "the session's events in JetStream" in_stream
got=$(only_ours "$dir/stream" | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//')
[[ "$got" == "$want" ]] || fail "JetStream holds '$got', expected '$want' in that order"
bytes=$(only_ours "$dir/stream" | awk '$1 == "input_sent" { print $2 }' | tr '\n' ' ')
[[ "$bytes" == "12 10 " ]] || fail "input_sent says '$bytes' bytes, expected 12 then 10"

wait_for 5 "the expired event on the SSE stream" grep -q '"type":"expired"' "$dir/sse-events"
sse=$(only_ours "$dir/sse-events")
[[ "$(cut -d' ' -f1 <<<"$sse" | tr '\n' ' ' | sed 's/ $//')" == "$want" ]] ||
  fail "the SSE event stream had '$(cut -d' ' -f1 <<<"$sse" | tr '\n' ' ')', expected '$want'"
[[ "$(awk '{print $NF}' <<<"$sse")" == "$(only_ours "$dir/stream" | awk '{print $NF}')" ]] ||
  fail "the SSE event stream and JetStream carry different event ids"
grep -q '"type":"status_changed"' "$dir/sse-events" || fail "the event stream dropped the types not asked for"

# A follower reconnecting after the first input_sent gets the rest.
after=$(awk '$1 == "input_sent" { print $NF; exit }' <<<"$sse")
curl -sN --max-time 2 -H "Last-Event-ID: $after" "$api/events?follow=1&session=$id&type=input_sent,expired" \
  >"$dir/sse-resumed" || true
resumed=$(only_ours "$dir/sse-resumed" | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//')
[[ "$resumed" == "input_sent expired" ]] || fail "resuming after $after gave '$resumed'"

echo "PASS: the agent-session walk: echo streamed, events in order in JetStream and on the stream"
