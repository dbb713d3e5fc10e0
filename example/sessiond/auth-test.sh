#!/usr/bin/env bash
# sessiond's authentication as an operator configures it: SESSIOND_TOKEN
# (and SESSIONKIT_TOKEN) guard the API, an empty token is a start-up error,
# and a non-loopback address without a token needs --insecure.
set -euo pipefail
sessiond=$1
work=$(mktemp -d)
pid=""
cleanup() {
  [[ -z "$pid" ]] || kill -9 "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- log"; cat "$work/log" 2>/dev/null || true; exit 1; }
# The environment of the CI job must not decide what is tested here.
unset SESSIOND_TOKEN SESSIONKIT_TOKEN SESSIOND_INSECURE SESSIOND_LISTEN

# start LISTEN [sessiond options...]: starts sessiond on LISTEN (port 0),
# waits for its start line, sets pid and port. (tools/start-sessiond.sh
# always listens on 127.0.0.1.)
start() {
  local listen=$1
  shift
  "$sessiond" --listen "$listen" "$@" 2>"$work/log" &
  pid=$!
  port=""
  for _ in $(seq 100); do
    port=$(grep -o '"port":[0-9]*' "$work/log" | head -1 | cut -d: -f2 || true)
    [[ -n "$port" ]] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  return 1
}

stop() {
  kill -TERM "$pid"
  local status=0
  wait "$pid" || status=$?
  pid=""
  [[ $status -eq 0 ]] || fail "sessiond exited $status on SIGTERM"
}

# status METHOD PATH [curl args...]: the HTTP status of one request.
status() {
  local method=$1 path=$2
  shift 2
  curl -s -o "$work/body" -w '%{http_code}' -X "$method" "http://127.0.0.1:$port$path" "$@"
}

# 1. The token from the environment, under either name.
for var in SESSIOND_TOKEN SESSIONKIT_TOKEN; do
  export "$var=s3cret"
  start 127.0.0.1:0 || fail "sessiond with $var did not start"
  unset "$var"
  grep -q '"auth":"bearer"' "$work/log" || fail "$var=s3cret: the start line does not say auth bearer"
  code=$(status POST /api/v1/sessions -H 'Content-Type: application/json' -d '{"id":"a1"}')
  [[ $code == 401 ]] || fail "$var: a request without a token got $code, expected 401"
  code=$(status POST /api/v1/sessions -H 'Authorization: Bearer wrong' -H 'Content-Type: application/json' -d '{"id":"a1"}')
  [[ $code == 401 ]] || fail "$var: a request with a wrong token got $code, expected 401"
  code=$(status POST /api/v1/sessions -H 'Authorization: Bearer s3cret' -H 'Content-Type: application/json' -d '{"id":"a1"}')
  [[ $code == 201 ]] || fail "$var: a request with the token got $code, expected 201: $(cat "$work/body")"
  code=$(status GET /healthz)
  [[ $code == 200 ]] || fail "$var: /healthz got $code without a token, expected 200"
  stop
done

# refused WHY CMD...: sessiond must exit non-zero at once, naming WHY on stderr.
refused() {
  local why=$1
  shift
  local status=0
  timeout 10 "$@" --run-for 5 >/dev/null 2>"$work/log" || status=$?
  [[ $status -ne 0 && $status -ne 124 ]] || fail "'$*' started (exit $status); expected a refusal naming $why"
  grep -qi -- "$why" "$work/log" || fail "'$*' was refused without naming $why"
}

# 2. An empty token is an error, never "no authentication".
refused token "$sessiond" --listen 127.0.0.1:0 --token ''
refused token env SESSIOND_TOKEN= "$sessiond" --listen 127.0.0.1:0
refused token env SESSIONKIT_TOKEN= "$sessiond" --listen 127.0.0.1:0
refused SESSIONKIT_TOKEN env SESSIOND_TOKEN=a SESSIONKIT_TOKEN=b "$sessiond" --listen 127.0.0.1:0
# The command line wins over the environment, an empty variable included.
SESSIOND_TOKEN= start 127.0.0.1:0 --token s3cret || fail "--token with SESSIOND_TOKEN= did not start"
grep -q '"auth":"bearer"' "$work/log" || fail "--token s3cret with SESSIOND_TOKEN=: not auth bearer"
stop

# 3. Every interface without a token: refused unless --insecure says so.
refused --insecure "$sessiond" --listen 0.0.0.0:0
refused --insecure env SESSIOND_LISTEN='[::]:0' "$sessiond"
start 0.0.0.0:0 --insecure || fail "--listen 0.0.0.0:0 --insecure did not start"
code=$(status POST /api/v1/sessions -H 'Content-Type: application/json' -d '{"id":"open"}')
[[ $code == 201 ]] || fail "--insecure: got $code, expected 201"
stop
SESSIOND_INSECURE=true start 0.0.0.0:0 || fail "--listen 0.0.0.0:0 with SESSIOND_INSECURE=true did not start"
stop
# With a token, any address is fine.
SESSIOND_TOKEN=s3cret start 0.0.0.0:0 || fail "0.0.0.0 with a token did not start"
code=$(status GET /api/v1/sessions/x)
[[ $code == 401 ]] || fail "0.0.0.0 with a token: got $code without it, expected 401"
stop
echo "sessiond auth: ok"
