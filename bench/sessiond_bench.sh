#!/usr/bin/env bash
# bench: sessiond — what the session layer costs next to HTTP itself.
# One release sessiond (memory store, 1 thread), wrk with 64 connections on
# 2 threads, in one run: GET /healthz (the reference: HTTP, routing, no
# store), GET /api/v1/sessions/{id}, POST /api/v1/sessions/{id}/touch.
# Prints req/s and p99 latency per case and each as a ratio to healthz.
#   bench/sessiond_bench.sh SESSIOND [SECONDS]
set -euo pipefail
sessiond=$1
secs=${2:-10}
command -v wrk >/dev/null || { echo "sessiond_bench: wrk is not installed (Debian: wrk)" >&2; exit 1; }
work=$(mktemp -d)
pid=""
trap '[[ -z "$pid" ]] || kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

# shellcheck source=../tools/start-sessiond.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../tools/start-sessiond.sh"
start_sessiond "$sessiond" "$work/log" --threads 1 --max-connections 4096 || { pid=${SESSIOND_PID:-}; exit 1; }
pid=$SESSIOND_PID
port=$SESSIOND_PORT
base=http://127.0.0.1:$port
# 1000 sessions; the load spreads over all of them.
for i in $(seq 1000); do
  printf '{"id":"bench-%d","owner":"bench"}' "$i" |
    curl -sf -o /dev/null -X POST "$base/api/v1/sessions" -H 'Content-Type: application/json' --data-binary @-
done
cat >"$work/get.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/sessions/bench-" .. (n % 1000 + 1))
end
LUA
cat >"$work/touch.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/api/v1/sessions/bench-" .. (n % 1000 + 1) .. "/touch", {["Content-Length"] = "0"})
end
LUA
cat >"$work/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %f %f %d\n", summary.requests / (summary.duration / 1e6), latency:percentile(99) / 1000, errors))
end
LUA
cp "$work/report.lua" "$work/healthz.lua"
cat "$work/report.lua" >>"$work/get.lua"
cat "$work/report.lua" >>"$work/touch.lua"
run() { # script path
  wrk -t2 -c64 -d"${secs}s" -s "$1" "$base$2" | awk '/^RESULT/{print $2, $3, $4}'
}
# Warm up (connections, allocator, caches) before anything is measured.
wrk -t2 -c64 -d2s "$base/healthz" >/dev/null
read -r h_rps h_p99 h_err < <(run "$work/healthz.lua" /healthz)
read -r g_rps g_p99 g_err < <(run "$work/get.lua" /)
read -r t_rps t_p99 t_err < <(run "$work/touch.lua" /)
kill "$pid"; wait "$pid" || true; pid=""

python3 - "$h_rps" "$h_p99" "$h_err" "$g_rps" "$g_p99" "$g_err" "$t_rps" "$t_p99" "$t_err" <<'PY'
import json, sys
h_rps, h_p99, h_err, g_rps, g_p99, g_err, t_rps, t_p99, t_err = map(float, sys.argv[1:])
def line(**kw): print(json.dumps({"bench": "sessiond", **kw}))
for name, rps, p99, err in (("healthz", h_rps, h_p99, h_err), ("get", g_rps, g_p99, g_err), ("touch", t_rps, t_p99, t_err)):
    line(case=name, connections=64, value=rps, unit="req/s", p99_ms=p99, errors=int(err))
line(case="get_vs_healthz", ratio=g_rps / h_rps, vs="wrk -c64 GET /healthz, same server, same run", target=">= 0.7")
line(case="touch_vs_healthz", ratio=t_rps / h_rps, vs="wrk -c64 GET /healthz, same server, same run", target=">= 0.7")
PY
