#!/usr/bin/env bash
# sessiond --store postgres over HTTP, against the PostgreSQL at
# DATABASE_URL, on a fresh --pg-schema:
#  - bad flags exit 2 naming them; an unreachable PostgreSQL exits 1 naming it;
#  - create, get-or-create, get, touch, patch and delete; /healthz names
#    the store;
#  - events made while the only --events target fails (/dev/full) wait in
#    PostgreSQL's outbox; the sessiond is SIGKILLed, and the one started
#    after it finds the sessions made before and writes those events to its
#    file once the dead one's lease ran out;
#  - a second sessiond on the same schema sees the first one's sessions and
#    the other way round (get-or-create, touch, delete through either);
#  - every state change reaches the --events files once (each event id
#    once, each session's events in order);
#  - /healthz is 503 naming PostgreSQL while it cannot be reached (a proxy
#    in between is killed), and 200 again once it can.
set -euo pipefail
sessiond=$1
here=$(dirname -- "${BASH_SOURCE[0]}")
# shellcheck source=../../test/smoke/require-service.sh
source "$here/../../test/smoke/require-service.sh"
require_service DATABASE_URL postgres
# shellcheck source=../../tools/start-sessiond.sh
source "$here/../../tools/start-sessiond.sh"

dir=$(mktemp -d)
schema="sessiond_test_$$_$RANDOM"
pids=()
proxy_pid=
cleanup() {
  local p
  exec 2>/dev/null  # (no "Killed" lines from bash)
  [[ -n "$proxy_pid" ]] && kill -9 "$proxy_pid" 2>/dev/null || true
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
  for f in "$dir"/log-* "$dir"/events-*; do
    [[ -f "$f" ]] || continue
    echo "--- ${f##*/}"
    tail -30 "$f"
  done
  exit 1
}

common=(--store postgres --pg-schema "$schema" --relay-lease 1 --relay-poll 0.05)

# ---- bad flags and an unreachable server ----------------------------------
expect_refusal() {  # STATUS TEXT sessiond-args...
  local want=$1 text=$2 code=0
  shift 2
  "$sessiond" "$@" >/dev/null 2>"$dir/err" || code=$?
  [[ $code == "$want" ]] || fail "sessiond $* exited $code, expected $want: $(cat "$dir/err")"
  grep -qF -- "$text" "$dir/err" || fail "sessiond $*: the error does not name '$text': $(cat "$dir/err")"
}
expect_refusal 2 "'http://db/x'" --store postgres --database-url http://db/x
expect_refusal 2 "--pg-schema" --store postgres --pg-schema 'Not-A-Schema'
expect_refusal 2 "--pg-pool" --store postgres --pg-pool 0
expect_refusal 2 "--pg-timeout" --store postgres --pg-timeout 0
(
  unset DATABASE_URL
  expect_refusal 2 "--database-url" --store postgres
)
"$sessiond" --version | grep -q 'stores: memory, redis, postgres' || fail "--version: $("$sessiond" --version)"

# ---- create, read, touch, patch, delete; events wait in the outbox --------
# The only target fails every write: each event stays in the outbox.
start_sessiond "$sessiond" "$dir/log-a" "${common[@]}" --events jsonl:/dev/full >/dev/null ||
  fail "sessiond a did not start"
a_pid=$SESSIOND_PID
pids+=("$a_pid")
a=http://127.0.0.1:$SESSIOND_PORT
grep -q '"store":"postgres"' "$dir/log-a" || fail "the start line does not say store postgres"

call() {  # METHOD URL [BODY]: sets code and body
  local args=(-s -o "$dir/body" -w '%{http_code}' --max-time 10 -X "$1" "$2")
  [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' -d "$3")
  code=$(curl "${args[@]}" || true)
  body=$(cat "$dir/body" 2>/dev/null || true)
}
expect() {  # STATUS TEXT WHAT
  [[ $code == "$1" ]] || fail "$3: $code $body"
  [[ -z "$2" ]] || grep -qF -- "$2" <<<"$body" || fail "$3: no '$2' in $body"
}

call GET "$a/healthz"
expect 200 '"store":"postgres"' "/healthz"
[[ $body == '{"status":"ok","store":"postgres"}' ]] || fail "/healthz: $body"
call POST "$a/api/v1/sessions" '{"id":"kept","owner":"alice","attributes":{"n":1}}'
expect 201 '"status":"active"' "create kept"
call POST "$a/api/v1/sessions" '{"id":"kept","owner":"bob"}'
expect 200 '"owner":"alice"' "get-or-create kept again"
call GET "$a/api/v1/sessions/kept"
expect 200 '"attributes":{"n":1}' "get kept"
call POST "$a/api/v1/sessions/kept/touch"
expect 200 '"status":"active"' "touch kept"
call PATCH "$a/api/v1/sessions/kept" '{"status":"idle","attributes":{"m":2}}'
expect 200 '"status":"idle"' "patch kept"
call POST "$a/api/v1/sessions" '{"id":"gone"}'
expect 201 '' "create gone"
call DELETE "$a/api/v1/sessions/gone?reason=done"
expect 200 '"status":"terminated"' "delete gone"
call GET "$a/api/v1/sessions/gone"
expect 200 '"end_reason":"done"' "get gone after delete"
call GET "$a/api/v1/sessions/nobody"
expect 404 '' "get an unknown id"
call POST "$a/api/v1/sessions/nobody/touch"
expect 404 '' "touch an unknown id"

metric() { curl -s --max-time 10 "$1/metrics" | sed -n "s/^$2 //p"; }
# created, status_changed (kept); created, terminated (gone).
depth=
for _ in $(seq 100); do
  depth=$(metric "$a" sessionkit_outbox_depth)
  errors=$(metric "$a" sessionkit_events_publish_errors_total)
  [[ $depth == 4 && ${errors:-0} -gt 0 ]] && break
  sleep 0.05
done
[[ $depth == 4 ]] || fail "outbox depth '$depth' with the target failing, expected 4"
[[ ${errors:-0} -gt 0 ]] || fail "no failed batch counted while --events is /dev/full"
echo "sessiond a: create/get/touch/patch/delete over PostgreSQL; 4 events waiting in the outbox"

kill -9 "$a_pid"
{ wait "$a_pid"; } 2>/dev/null || true  # (without bash's "Killed" line)

# ---- restarted: the sessions and the events survive -----------------------
start_sessiond "$sessiond" "$dir/log-a2" "${common[@]}" --events "jsonl:$dir/events-a2" >/dev/null ||
  fail "sessiond a2 did not start"
pids+=("$SESSIOND_PID")
a2_pid=$SESSIOND_PID
a2=http://127.0.0.1:$SESSIOND_PORT
call GET "$a2/api/v1/sessions/kept"
expect 200 '"status":"idle"' "get kept after the restart"
# (jsonb keeps an object's keys in its own order.)
grep -qF '"n":1' <<<"$body" && grep -qF '"m":2' <<<"$body" || fail "kept lost its attributes over the restart: $body"
call GET "$a2/api/v1/sessions/gone"
expect 200 '"status":"terminated"' "get gone after the restart"
# The killed sessiond's partition leases run out (1 s), then a2 relays.
for _ in $(seq 200); do
  [[ $(wc -l <"$dir/events-a2" 2>/dev/null || echo 0) -ge 4 ]] && break
  sleep 0.05
done
[[ $(wc -l <"$dir/events-a2") -ge 4 ]] || fail "the killed sessiond's 4 events did not reach the new one's file"
call POST "$a2/api/v1/sessions/kept/touch"
expect 200 '"id":"kept"' "touch kept after the restart"
echo "sessiond a2 (after SIGKILL): the sessions are there, the waiting events relayed"

# ---- a second sessiond on the same schema ----------------------------------
start_sessiond "$sessiond" "$dir/log-b" "${common[@]}" --events "jsonl:$dir/events-b" --pg-pool 2 \
  --pg-timeout 3 >/dev/null || fail "sessiond b did not start"
pids+=("$SESSIOND_PID")
b_pid=$SESSIOND_PID
b=http://127.0.0.1:$SESSIOND_PORT
call GET "$b/api/v1/sessions/kept"
expect 200 '"owner":"alice"' "b reads a's session"
call POST "$b/api/v1/sessions" '{"id":"shared","owner":"carol"}'
expect 201 '' "create shared through b"
call POST "$a2/api/v1/sessions" '{"id":"shared","owner":"dave"}'
expect 200 '"owner":"carol"' "get-or-create through a2 of b's session"
call POST "$a2/api/v1/sessions/shared/touch"
expect 200 '' "touch through a2 of b's session"
call GET "$b/api/v1/sessions?owner=carol"
expect 200 '"id":"shared"' "list through b"
call DELETE "$a2/api/v1/sessions/shared?reason=elsewhere"
expect 200 '"status":"terminated"' "delete through a2 of b's session"
call GET "$b/api/v1/sessions/shared"
expect 200 '"end_reason":"elsewhere"' "b sees the delete through a2"
call DELETE "$b/api/v1/sessions/kept?reason=bye"
expect 200 '"status":"terminated"' "delete through b of a's session"
call GET "$a2/api/v1/sessions/kept"
expect 200 '"end_reason":"bye"' "a2 sees the delete through b"
call GET "$b/healthz"
expect 200 '"store":"postgres"' "b's /healthz"
echo "sessiond a2 and b on one schema: each sees and ends the other's sessions"

# ---- every state change in the files once ---------------------------------
for _ in $(seq 200); do
  [[ $(metric "$a2" sessionkit_outbox_depth) == 0 && $(cat "$dir"/events-a2 "$dir"/events-b 2>/dev/null | wc -l) -ge 7 ]] &&
    break
  sleep 0.05
done
sleep 0.5  # time for a stray duplicate to show
python3 - "$dir"/events-a2 "$dir"/events-b <<'EOF' || fail "events"
import json, sys
events = []
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            events += [json.loads(line) for line in f]
    except FileNotFoundError:
        pass
ids = [e["id"] for e in events]
dup = sorted({i for i in ids if ids.count(i) > 1})
if dup:
    sys.exit("events written more than once: %s" % dup)
got = {}
for e in sorted(events, key=lambda e: e["time"]):
    step = e["type"]
    if step == "status_changed":
        step += ":%s>%s" % (e["data"]["from"], e["data"]["to"])
    got.setdefault(e["session_id"], []).append(step)
want = {
    "kept": ["created", "status_changed:active>idle", "terminated"],  # (touch leaves idle alone)
    "gone": ["created", "terminated"],
    "shared": ["created", "terminated"],
}
if got != want:
    sys.exit("the events, by session: %s\nexpected: %s" % (got, want))
print("events: %d, each once, in order: %s" % (len(events), got))
EOF

# ---- /healthz while PostgreSQL cannot be reached ---------------------------
# sessiond c reaches PostgreSQL through a TCP proxy, which is then killed.
cat >"$dir/proxy.py" <<'EOF'
import asyncio, os, sys, urllib.parse
url, out, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlsplit(url)
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def handle(cr, cw):
    try:
        sr, sw = await asyncio.open_connection(u.hostname, u.port or 5432)
    except Exception:
        cw.close()
        return
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw))
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    user = u.netloc.rsplit("@", 1)[0] + "@" if "@" in u.netloc else ""
    with open(out + ".tmp", "w") as f:
        f.write(urllib.parse.urlunsplit(u._replace(netloc="%s127.0.0.1:%d" % (user, bound))))
    os.rename(out + ".tmp", out)
    async with server:
        await server.serve_forever()
asyncio.run(main())
EOF
start_proxy() {  # PORT (0: any)
  rm -f "$dir/proxy-url"
  python3 "$dir/proxy.py" "$DATABASE_URL" "$dir/proxy-url" "$1" &
  proxy_pid=$!
  for _ in $(seq 100); do
    [[ -s "$dir/proxy-url" ]] && return 0
    sleep 0.05
  done
  fail "the proxy did not start"
}
start_proxy 0
proxied=$(cat "$dir/proxy-url")
proxy_port=${proxied##*:}
proxy_port=${proxy_port%%/*}
start_sessiond "$sessiond" "$dir/log-c" --store postgres --pg-schema "$schema" --database-url "$proxied" \
  --pg-pool 1 --pg-timeout 1 >/dev/null || fail "sessiond c did not start"
pids+=("$SESSIOND_PID")
c=http://127.0.0.1:$SESSIOND_PORT
call GET "$c/healthz"
expect 200 '"store":"postgres"' "c's /healthz through the proxy"
kill -9 "$proxy_pid"
{ wait "$proxy_pid"; } 2>/dev/null || true
for _ in $(seq 50); do
  call GET "$c/healthz"
  [[ $code == 503 ]] && break
  sleep 0.1
done
expect 503 'PostgreSQL postgresql://' "c's /healthz with PostgreSQL out of reach"
expect 503 '"store":"postgres"' "c's /healthz with PostgreSQL out of reach"
echo "/healthz with PostgreSQL out of reach: $body"
expect_refusal 1 "cannot open the PostgreSQL store" --store postgres --pg-schema "$schema" --database-url "$proxied"
grep -qF "127.0.0.1:$proxy_port" "$dir/err" || fail "the start failure does not name the server: $(cat "$dir/err")"
start_proxy "$proxy_port"
for _ in $(seq 100); do
  call GET "$c/healthz"
  [[ $code == 200 ]] && break
  sleep 0.1
done
expect 200 '"store":"postgres"' "c's /healthz once PostgreSQL is back"

# ---- a clean stop -----------------------------------------------------------
for p in "$a2_pid" "$b_pid"; do
  kill -TERM "$p"
  status=0
  wait "$p" || status=$?
  [[ $status == 0 ]] || fail "sessiond $p exited $status on SIGTERM"
done
grep -q '"msg":"sessiond stopped"' "$dir/log-b" || fail "b logged no clean stop"
echo "sessiond postgres: ok"
