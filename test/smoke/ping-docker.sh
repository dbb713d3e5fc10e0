#!/usr/bin/env bash
# Smoke test: the docker fixture answers /_ping on $DOCKER_HOST and can run a
# container from $SESSIONKIT_TEST_IMAGE (create, start, wait, logs, remove),
# using the Engine API directly (the same calls sessionkit's spawner makes).
set -euo pipefail

# shellcheck source=require-service.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/require-service.sh"
require_service DOCKER_HOST docker
image=${SESSIONKIT_TEST_IMAGE:-sessionkit-busybox:latest}

if [[ "$DOCKER_HOST" != unix://* ]]; then
  echo "FAIL: expected a unix:// DOCKER_HOST, got $DOCKER_HOST"
  exit 1
fi
sock=${DOCKER_HOST#unix://}

api() {
  # api METHOD PATH [JSON-BODY]; fails on HTTP errors (-f).
  local method=$1 path=$2
  shift 2
  if [[ $# -gt 0 ]]; then
    curl -fsS --max-time 60 --unix-socket "$sock" -X "$method" \
      -H 'Content-Type: application/json' -d "$1" "http://localhost$path"
  else
    curl -fsS --max-time 60 --unix-socket "$sock" -X "$method" "http://localhost$path"
  fi
}

pong=$(api GET /_ping)
if [[ "$pong" != OK ]]; then
  echo "FAIL: /_ping on $sock returned '$pong', expected OK"
  exit 1
fi

id=""
cleanup() {
  if [[ -n "$id" ]]; then
    api DELETE "/containers/$id?force=1&v=1" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

created=$(api POST /containers/create \
  "{\"Image\":\"$image\",\"Cmd\":[\"/bin/echo\",\"hello\"],\"HostConfig\":{\"NetworkMode\":\"none\"}}")
id=$(printf '%s' "$created" | sed -n 's/.*"Id":"\([0-9a-f]*\)".*/\1/p')
if [[ -z "$id" ]]; then
  echo "FAIL: container create returned: $created"
  exit 1
fi
api POST "/containers/$id/start" >/dev/null
waited=$(api POST "/containers/$id/wait")
if [[ "$waited" != *'"StatusCode":0'* ]]; then
  echo "FAIL: container exited abnormally: $waited"
  exit 1
fi
# Logs come multiplexed (8-byte frame headers) since there is no TTY; strip
# the non-printable header bytes before comparing.
logs=$(api GET "/containers/$id/logs?stdout=1&stderr=1" | tr -cd '[:print:]\n')
if [[ "$logs" != *hello* ]]; then
  echo "FAIL: container logs do not say hello: '$logs'"
  exit 1
fi
api DELETE "/containers/$id?force=1&v=1" >/dev/null
id=""
echo "OK: docker at $DOCKER_HOST ran $image"
