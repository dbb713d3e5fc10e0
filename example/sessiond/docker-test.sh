#!/usr/bin/env bash
# sessiond --spawner docker against the harness's dockerd: a session gets a
# running container, input reaches its stdin and its output comes back
# (`cat`), DELETE removes it, and sessions of a daemon killed with SIGKILL
# leave no container once a new one has swept.
set -euo pipefail
sessiond=$1
: "${DOCKER_HOST:?the harness sets DOCKER_HOST}" "${SESSIONKIT_TEST_IMAGE:?}"
sock=${DOCKER_HOST#unix://}
dep="sessiond$$"
dir=$(mktemp -d)
pid=
engine() { curl -s --unix-socket "$sock" "$@"; }
count_ours() {
  engine -G "http://x/v1.41/containers/json" --data-urlencode "all=1" \
    --data-urlencode "filters={\"label\":[\"sessionkit.deployment=$dep\"]}" | grep -o '"Id"' | wc -l
}
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  for id in $(engine -G "http://x/v1.41/containers/json" --data-urlencode "all=1" \
      --data-urlencode "filters={\"label\":[\"sessionkit.deployment=$dep\"]}" | grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4); do
    engine -X DELETE "http://x/v1.41/containers/$id?force=1" >/dev/null
  done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- log"; cat "$dir/log"; exit 1; }
# shellcheck source=../../tools/start-sessiond.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../../tools/start-sessiond.sh"
start() {
  start_sessiond "$sessiond" "$dir/log" --spawner docker --worker-image "$SESSIONKIT_TEST_IMAGE" \
    --worker-command cat --deployment "$dep" --stop-grace 1 >/dev/null || fail "sessiond did not start"
  pid=$SESSIOND_PID
  api=http://127.0.0.1:$SESSIOND_PORT/api/v1/sessions
}

start
code=$(curl -s -o "$dir/body" -w '%{http_code}' -X POST "$api" -H 'Content-Type: application/json' -d '{"id":"box-1"}')
[[ $code == 201 ]] || fail "create: $code $(cat "$dir/body")"
grep -q '"kind":"docker"' "$dir/body" || fail "no docker worker: $(cat "$dir/body")"
cid=$(grep -o '"id":"[0-9a-f]\{64\}"' "$dir/body" | cut -d'"' -f4)
engine "http://x/v1.41/containers/$cid/json" | grep -q '"Running":true' || fail "container $cid does not run"
code=$(curl -s -o "$dir/body" -w '%{http_code}' -X POST "$api/box-1/input" --data-binary $'ping\n')
[[ $code == 204 ]] || fail "input to a docker worker: $code $(cat "$dir/body")"
for _ in $(seq 100); do
  got=$(curl -s "$api/box-1/output?from=0")
  [[ $got == ping ]] && break
  sleep 0.05
done
[[ $got == ping ]] || fail "output of the container: '$got'"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$api/box-1")
[[ $code == 200 ]] || fail "delete: $code"
engine -o /dev/null -w '%{http_code}' "http://x/v1.41/containers/$cid/json" | grep -q 404 || fail "container still there after DELETE"

# Killed with SIGKILL while owning two containers: the next sessiond's
# first sweep (memory store: those sessions are gone) removes both.
curl -s -o /dev/null -X POST "$api" -H 'Content-Type: application/json' -d '{"id":"box-2"}'
curl -s -o /dev/null -X POST "$api" -H 'Content-Type: application/json' -d '{"id":"box-3"}'
[[ $(count_ours) == 2 ]] || fail "expected 2 containers, found $(count_ours)"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
start
for _ in $(seq 100); do [[ $(count_ours) == 0 ]] && break; sleep 0.1; done
[[ $(count_ours) == 0 ]] || fail "$(count_ours) orphan containers left after a restart"
set +e
"$sessiond" --spawner docker >/dev/null 2>"$dir/err"; rc=$?
set -e
[[ $rc == 2 ]] && grep -q -- "--worker-image" "$dir/err" || fail "--spawner docker without an image: rc $rc"
echo "sessiond docker: ok"
