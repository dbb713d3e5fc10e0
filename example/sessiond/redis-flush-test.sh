#!/usr/bin/env bash
# Fault: Redis flushed (FLUSHALL) and sessiond SIGKILLed and restarted, with
# --store postgres+redis --spawner process. Every session, its worker output
# and its event history come back from PostgreSQL:
#  - 20 sessions, each with a `sh` worker: 8 print a known output and exit 0
#    (terminated, worker_exited), 3 are deleted, 6 have their attributes
#    patched (3 of them also their status), 9 are live at the kill, with
#    output of their own;
#  - then FLUSHALL on Redis (a private redis-server: FLUSHALL must not touch
#    the other tests' keys), kill -9, and a new sessiond on the same
#    PostgreSQL schema and Redis;
#  - every session reads back with the same owner, status, end reason,
#    attributes and version (a live one may instead have been failed with
#    reason worker_lost: its worker died with the killed sessiond, and the
#    new janitor's first reconciliation ends it, bumping the version);
#    paging lists all 20 once;
#  - every worker's output reads back byte for byte;
#  - the --events files of both runs, taken by event id (a file target is at
#    least once: a line may repeat with its id, never differ), hold exactly
#    the events expected per session and type: one created, one
#    worker_started, one terminated per ended session, one worker_exited per
#    worker that exited or was lost; nothing expired.
# Touches (input counts as use) that stayed in the cache are lost with it by
# design (--touch-coalesce): last_active is not compared.
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
schema="sessiond_flush_$$_$RANDOM"
# FLUSH_TEST_SCHEMA_B: the schema of the restarted sessiond; another one
# must make this test fail (how it was checked that it can).
schema_b=${FLUSH_TEST_SCHEMA_B:-$schema}
pids=()
redis_pid=
cleanup() {
  local p
  exec 2>/dev/null
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [[ -n "$redis_pid" ]] && kill -9 "$redis_pid" 2>/dev/null || true
  { wait; } 2>/dev/null || true
  if command -v psql >/dev/null; then
    psql -q "$DATABASE_URL" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
    psql -q "$DATABASE_URL" -c "DROP SCHEMA IF EXISTS $schema_b CASCADE" >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  local f
  for f in "$dir"/log-* "$dir"/events-*; do
    [[ -f "$f" ]] || continue
    echo "--- ${f##*/}"
    tail -30 "$f"
  done
  exit 1
}

# ---- a private redis-server ------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --logfile "$dir/redis.log" >/dev/null &
redis_pid=$!
redis=(redis-cli -p "$port")
for _ in $(seq 100); do
  [[ $("${redis[@]}" ping 2>/dev/null) == PONG ]] && break
  sleep 0.05
done
[[ $("${redis[@]}" ping 2>/dev/null) == PONG ]] || fail "the private redis-server did not start"

common=(--store postgres+redis --redis-url "redis://127.0.0.1:$port/0" --relay-lease 1 --relay-poll 0.05
  --spawner process --worker-command sh --stop-grace 1 --deployment "flush-$$" --janitor-interval 1)
start_sessiond "$sessiond" "$dir/log-a" "${common[@]}" --pg-schema "$schema" \
  --events "jsonl:$dir/events-a.jsonl" >/dev/null || fail "sessiond did not start"
a_pid=$SESSIOND_PID
pids+=("$a_pid")
a=http://127.0.0.1:$SESSIOND_PORT/api/v1/sessions

ids=()
for i in $(seq -w 1 20); do ids+=("s-$i"); done
exited=(s-01 s-02 s-03 s-04 s-05 s-06 s-07 s-08)
deleted=(s-15 s-16 s-17)
patched=(s-09 s-10 s-11 s-12 s-13 s-14)
live=(s-09 s-10 s-11 s-12 s-13 s-14 s-18 s-19 s-20)

for id in "${ids[@]}"; do
  owner=alice
  [[ $id > s-10 ]] && owner=bob
  code=$(curl -s -o "$dir/body" -w '%{http_code}' -X POST "$a" -H 'content-type: application/json' \
    -d "{\"id\":\"$id\",\"owner\":\"$owner\",\"attributes\":{\"n\":\"$id\",\"keep\":true}}")
  [[ $code == 201 ]] || fail "create $id: $code $(cat "$dir/body")"
  grep -q '"kind":"process"' "$dir/body" || fail "$id has no process worker: $(cat "$dir/body")"
done
# Workers that print what they are told, then exit 0 (s-01 prints 20 kB).
for id in "${exited[@]}"; do
  cmd='echo "hello-$SESSIONKIT_SESSION_ID"'
  [[ $id == s-01 ]] && cmd+='; seq 1 4000'
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$a/$id/input" --data-binary "$cmd; exit 0"$'\n')
  [[ $code == 204 ]] || fail "input to $id: $code"
done
for id in "${live[@]}"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$a/$id/input" \
    --data-binary 'echo "live-$SESSIONKIT_SESSION_ID"; echo "to stderr" >&2'$'\n')
  [[ $code == 204 ]] || fail "input to $id: $code"
done
for id in "${patched[@]}"; do
  body="{\"attributes\":{\"keep\":null,\"tag\":\"patched-$id\",\"nested\":{\"k\":[1,2]}}}"
  [[ $id < s-12 ]] && body="{\"status\":\"idle\",\"attributes\":{\"keep\":null,\"tag\":\"patched-$id\"}}"
  code=$(curl -s -o "$dir/body" -w '%{http_code}' -X PATCH "$a/$id" -H 'content-type: application/json' -d "$body")
  [[ $code == 200 ]] || fail "patch $id: $code $(cat "$dir/body")"
done
for id in "${deleted[@]}"; do
  code=$(curl -s -o "$dir/body" -w '%{http_code}' -X DELETE "$a/$id?reason=done-$id")
  [[ $code == 200 ]] || fail "delete $id: $code $(cat "$dir/body")"
done
# The exited workers' sessions end by themselves; the live ones' output is in.
for id in "${exited[@]}"; do
  for _ in $(seq 100); do
    grep -q '"status":"terminated"' <<<"$(curl -s "$a/$id")" && break
    sleep 0.05
  done
  grep -q '"end_reason":"worker_exited"' <<<"$(curl -s "$a/$id")" || fail "$id did not end: $(curl -s "$a/$id")"
done
for id in "${live[@]}"; do
  for _ in $(seq 100); do
    [[ $(curl -s "$a/$id/output?from=0") == *"to stderr"* ]] && break
    sleep 0.05
  done
done

# What must come back: every session's record and output, before the flush.
mkdir "$dir/before" "$dir/after"
for id in "${ids[@]}"; do
  curl -sf "$a/$id" >"$dir/before/$id.json" || fail "get $id"
  curl -sf "$a/$id/output?from=0" >"$dir/before/$id.out" || fail "output of $id"
done
grep -q '^hello-s-01$' "$dir/before/s-01.out" && grep -q '^4000$' "$dir/before/s-01.out" ||
  fail "s-01's output: $(head -c 200 "$dir/before/s-01.out")"
grep -q '^live-s-18$' "$dir/before/s-18.out" || fail "s-18's output: $(cat "$dir/before/s-18.out")"
[[ $("${redis[@]}" dbsize) -gt 0 ]] || fail "nothing was cached in Redis"

# ---- Redis flushed, sessiond killed, started again ------------------------
[[ $("${redis[@]}" flushall) == OK ]] || fail "FLUSHALL"
[[ $("${redis[@]}" dbsize) == 0 ]] || fail "Redis is not empty after FLUSHALL"
{ kill -9 "$a_pid" && wait "$a_pid"; } 2>/dev/null || true
start_sessiond "$sessiond" "$dir/log-b" "${common[@]}" --pg-schema "$schema_b" \
  --events "jsonl:$dir/events-b.jsonl" >/dev/null || fail "sessiond did not start again"
pids+=("$SESSIOND_PID")
b=http://127.0.0.1:$SESSIOND_PORT/api/v1/sessions

for id in "${ids[@]}"; do
  code=$(curl -s -o "$dir/after/$id.json" -w '%{http_code}' "$b/$id")
  [[ $code == 200 ]] || fail "$id is gone after the flush and the restart: $code $(cat "$dir/after/$id.json")"
  curl -sf "$b/$id/output?from=0" >"$dir/after/$id.out" || fail "output of $id after the restart"
  cmp -s "$dir/before/$id.out" "$dir/after/$id.out" ||
    fail "$id's output differs after the restart: '$(head -c 100 "$dir/after/$id.out")'"
done
# The live ones' workers died with the killed sessiond: the new janitor
# fails each of them once (worker_lost).
for id in "${live[@]}"; do
  for _ in $(seq 200); do
    grep -q '"status":"failed"' <<<"$(curl -s "$b/$id")" && break
    sleep 0.05
  done
done
python3 - "$dir" "${live[*]}" <<'PY' || fail "the sessions did not come back as they were"
import json, sys, os
d, live = sys.argv[1], set(sys.argv[2].split())
for name in sorted(os.listdir(d + "/before")):
    if not name.endswith(".json"):
        continue
    sid = name[:-5]
    before = json.load(open(f"{d}/before/{name}"))
    after = json.load(open(f"{d}/after/{name}"))
    for field in ("id", "owner", "attributes", "created_at", "idle_timeout_ms"):
        assert before.get(field) == after.get(field), (sid, field, before.get(field), after.get(field))
    same = all(before.get(f) == after.get(f) for f in ("status", "version", "end_reason", "worker"))
    lost = sid in live and after["status"] == "failed" and after["end_reason"] == "worker_lost" \
        and after["version"] > before["version"]
    assert same or lost, (sid, before, after)
    assert "stale" not in after, (sid, after)
PY
for id in "${live[@]}"; do
  got=$(curl -s "$b/$id")
  grep -q '"end_reason":"worker_lost"' <<<"$got" || fail "$id was not failed as worker_lost: $got"
done
# Paging lists every session once.
curl -sf "$b?limit=7" >"$dir/page1" || fail "list"
python3 - "$b" <<'PY' || fail "paging did not list the 20 sessions once"
import json, sys, urllib.request
url, seen, cursor = sys.argv[1], [], None
while True:
    page = json.load(urllib.request.urlopen(url + "?limit=7" + (f"&cursor={cursor}" if cursor else "")))
    seen += [s["id"] for s in page["sessions"]]
    cursor = page["next_cursor"]
    if not cursor:
        break
assert sorted(seen) == [f"s-{i:02d}" for i in range(1, 21)], seen
PY

# ---- the events of both runs ----------------------------------------------
# Wait until the new relay has published the worker_lost failures and the
# outbox is empty (what the killed one left is published once its lease ran
# out).
for _ in $(seq 200); do
  lost=$(grep -c '"worker_lost"' "$dir/events-b.jsonl" 2>/dev/null || true)
  depth=$(curl -sf "${b%/api/v1/sessions}/metrics" | awk '$1 == "sessionkit_outbox_depth" { print $2 }')
  [[ ${lost:-0} -ge $((2 * ${#live[@]})) && $depth == 0 ]] && break
  sleep 0.05
done
python3 - "$dir" "${exited[*]}" "${deleted[*]}" "${live[*]}" "${patched[*]}" <<'PY' || fail "the events are not as expected"
import json, sys, collections
d = sys.argv[1]
exited, deleted, live, patched = (set(a.split()) for a in sys.argv[2:6])
by_id, repeats = {}, 0
for f in ("events-a.jsonl", "events-b.jsonl"):
    for line in open(f"{d}/{f}"):
        if not line.strip():
            continue
        e = json.loads(line)
        if e["id"] in by_id:
            # At least once: a repeated line carries the same event.
            assert by_id[e["id"]] == e, ("an id with two events", by_id[e["id"]], e)
            repeats += 1
        by_id[e["id"]] = e
count = collections.Counter((e["session_id"], e["type"]) for e in by_id.values())
sessions = {f"s-{i:02d}" for i in range(1, 21)}
assert {s for s, _ in count} == sessions, sorted({s for s, _ in count})
for s in sorted(sessions):
    ended = s in exited or s in deleted or s in live  # live ones: lost at the restart
    want = {"created": 1, "worker_started": 1, "terminated": 1 if ended else 0,
            "worker_exited": 1 if (s in exited or s in live) else 0, "expired": 0, "timeout_warning": 0}
    for t, n in want.items():
        assert count[(s, t)] == n, (s, t, count[(s, t)], n)
    if s in patched and s < "s-12":
        assert any(e["session_id"] == s and e["type"] == "status_changed" and e["data"].get("to") == "idle"
                   for e in by_id.values()), (s, "no status_changed to idle")
for e in by_id.values():
    if e["type"] == "worker_exited":
        want = "worker_exited" if e["session_id"] in exited else "worker_lost"
        assert e["data"]["reason"] == want, e
    if e["type"] == "terminated" and e["session_id"] in deleted:
        assert e["data"]["reason"] == "done-" + e["session_id"], e
print(f"{len(by_id)} events, {repeats} repeated lines")
PY
echo "ok: redis flushed and sessiond restarted, everything back from PostgreSQL"

# ---- Redis killed: bypassed, and each switch is an event --------------------
# (store_degraded / store_recovered, about no session: sent straight to the
# targets, not through the outbox.)
{ kill -9 "$redis_pid" && wait "$redis_pid"; } 2>/dev/null || true
metrics="${b%/api/v1/sessions}/metrics"
for _ in $(seq 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$b/s-01")
  [[ $(curl -sf "$metrics" | awk '$1 == "sessionkit_cache_in_use" { print $2 }') == 0 ]] && break
  sleep 0.05
done
[[ $(curl -sf "$metrics" | awk '$1 == "sessionkit_cache_in_use" { print $2 }') == 0 ]] ||
  fail "the cache was not bypassed with Redis killed"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$b" -H 'Content-Type: application/json' -d '{"id":"s-99"}')
[[ $code == 201 ]] || fail "a create with Redis down (bypass) answered $code"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --logfile "$dir/redis.log" >/dev/null &
redis_pid=$!
for _ in $(seq 200); do
  curl -s -o /dev/null "$b/s-99"
  [[ $(curl -sf "$metrics" | awk '$1 == "sessionkit_cache_in_use" { print $2 }') == 1 ]] && break
  sleep 0.05
done
[[ $(curl -sf "$metrics" | awk '$1 == "sessionkit_cache_in_use" { print $2 }') == 1 ]] ||
  fail "the cache did not come back into use after Redis restarted"
for _ in $(seq 100); do
  grep -q '"type":"store_recovered"' "$dir/events-b.jsonl" && break
  sleep 0.05
done
python3 - "$dir/events-b.jsonl" <<'PY' || fail "the cache's switches are not events"
import json, sys
switches = [json.loads(l) for l in open(sys.argv[1]) if '"type":"store_' in l]
got = [(e["type"], e["session_id"], e["data"]["part"], e["data"].get("policy")) for e in switches]
assert got == [("store_degraded", "", "cache", "bypass"), ("store_recovered", "", "cache", None)], got
assert switches[0]["data"]["reason"], switches[0]
PY
echo "ok: Redis killed and back: bypassed meanwhile, each switch an event"
