#!/usr/bin/env bash
# sandboxd serve without Redis (doc/sandboxd.md, "Failure behaviour"):
# it refuses to start within --redis-timeout, exit 1, with an error naming
# Redis and the URL, rather than running a janitor that only logs failed
# sweeps. Two ways Redis can be missing: nothing listens on the port
# (refused at once), and something listens but never answers (the timeout).
set -euo pipefail
sandboxd=$1
dir=$(mktemp -d)
silent=
cleanup() {
  [[ -z "$silent" ]] || kill "$silent" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- log (last lines)"; tail -n 20 "$dir/log" 2>/dev/null || true; exit 1; }

# serve_without URL LIMIT_MS: serve must exit 1 within LIMIT_MS, saying
# that it cannot reach Redis at URL.
serve_without() {
  local url=$1 limit_ms=$2 rc started took
  started=$(date +%s%N)
  set +e
  timeout 10 "$sandboxd" serve --image unused --redis-url "$url" --redis-timeout 1 --janitor-interval 0.2 \
    >/dev/null 2>"$dir/log"
  rc=$?
  set -e
  took=$((($(date +%s%N) - started) / 1000000))
  [[ $rc == 1 ]] || fail "serve against $url: exit $rc after $took ms, expected 1"
  ((took < limit_ms)) || fail "serve against $url took $took ms to give up (limit $limit_ms ms)"
  grep -q '"msg":"cannot reach Redis"' "$dir/log" || fail "serve against $url: no 'cannot reach Redis' error"
  grep -qF "\"redis\":\"$url\"" "$dir/log" || fail "serve against $url: the error does not name the URL"
}

# A port nobody listens on (bound, then closed again).
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
serve_without "redis://127.0.0.1:$closed/0" 3000

# A port that accepts connections (the kernel's backlog) and never replies.
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
time.sleep(60)' >"$dir/port" &
silent=$!
for _ in $(seq 100); do [[ -s "$dir/port" ]] && break; sleep 0.05; done
[[ -s "$dir/port" ]] || fail "the silent listener did not start"
serve_without "redis://127.0.0.1:$(cat "$dir/port")/0" 4000
echo "sandboxd without Redis: ok"
