#!/usr/bin/env bash
# sandboxd against the test harness's dockerd and Redis: acquire reuses a
# user's container while the session lives, concurrent acquires make one
# container, release removes it, serve culls idle sandboxes and removes
# orphans, bad command lines exit 2 naming the problem.
set -euo pipefail
sandboxd=$1
# Without the harness's dockerd or Redis: skipped (exit 77), or failed with CI set.
# shellcheck source=../../test/smoke/require-service.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../../test/smoke/require-service.sh"
require_service DOCKER_HOST docker
require_service SESSIONKIT_TEST_IMAGE docker
require_service REDIS_URL redis
sock=${DOCKER_HOST#unix://}
dep="sbx$$"
export SANDBOXD_IMAGE=$SESSIONKIT_TEST_IMAGE SANDBOXD_DEPLOYMENT=$dep SANDBOXD_PREFIX="sandboxtest:$$:"
dir=$(mktemp -d)
engine() { curl -s --unix-socket "$sock" "$@"; }
ours() { engine -G "http://x/v1.41/containers/json" --data-urlencode "all=1" \
  --data-urlencode "filters={\"label\":[\"sessionkit.deployment=$dep\"]}"; }
count_ours() { ours | grep -o '"Id"' | wc -l; }
cleanup() {
  for id in $(ours | grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4); do engine -X DELETE "http://x/v1.41/containers/$id?force=1" >/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$dir"/*.log; do [[ -e $f ]] && { echo "--- $f"; cat "$f"; }; done; exit 1; }
running() { engine "http://x/v1.41/containers/$1/json" | grep -q '"Running":true'; }

acquire() { "$sandboxd" acquire "$@" --command sleep --command 1000; }

a1=$(acquire alice 2>"$dir/a.log") || fail "acquire alice"
[[ $a1 =~ ^[0-9a-f]{64}$ ]] || fail "acquire printed '$a1', not a container id"
running "$a1" || fail "alice's container does not run"
a2=$(acquire alice 2>>"$dir/a.log") || fail "acquire alice again"
[[ $a1 == "$a2" ]] || fail "the second acquire of alice gave another container ($a2)"
b1=$(acquire bob 2>"$dir/b.log") || fail "acquire bob"
[[ $b1 != "$a1" ]] || fail "bob got alice's container"

# Concurrent acquires of one user, from separate processes: one container.
for i in 1 2 3 4; do acquire carol >"$dir/carol$i" 2>"$dir/carol$i.log" & done
wait
ids=$(sort -u "$dir"/carol[1-4])
[[ $(wc -l <<<"$ids") == 1 && $ids =~ ^[0-9a-f]{64}$ ]] || fail "4 concurrent acquires of carol gave: $ids"
[[ $(count_ours) == 3 ]] || fail "expected 3 containers (alice, bob, carol), found $(count_ours)"

[[ $("$sandboxd" release alice 2>"$dir/r.log") == terminated ]] || fail "release alice"
engine -o /dev/null -w '%{http_code}' "http://x/v1.41/containers/$a1/json" | grep -q 404 || fail "alice's container still exists"

# serve: dave (idle timeout 1 s) is culled; a container with our label and
# no session (left by a crash) is removed; bob stays.
acquire dave --idle-timeout 1 >/dev/null 2>"$dir/d.log" || fail "acquire dave"
ghost=$(engine -H 'Content-Type: application/json' -X POST "http://x/v1.41/containers/create" \
  -d "{\"Image\":\"$SESSIONKIT_TEST_IMAGE\",\"Cmd\":[\"sleep\",\"1000\"],\"Labels\":{\"sessionkit.deployment\":\"$dep\",\"sessionkit.session\":\"ghost\"},\"HostConfig\":{\"NetworkMode\":\"none\"}}" |
  grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4)
[[ -n $ghost ]] || fail "could not create the orphan container"
"$sandboxd" serve --janitor-interval 0.2 --run-for 4 >/dev/null 2>"$dir/serve.log" || fail "serve exited non-zero"
grep -q '"orphans_removed":1' "$dir/serve.log" || fail "serve did not report the orphan removed"
engine -o /dev/null -w '%{http_code}' "http://x/v1.41/containers/$ghost/json" | grep -q 404 || fail "the orphan still exists"
running "$b1" || fail "bob's sandbox was culled"
[[ $(count_ours) == 2 ]] || fail "expected bob and carol left, found $(count_ours) containers"

# Bad command lines.
set +e
"$sandboxd" acquire >/dev/null 2>"$dir/bad.log"; rc=$?
set -e
[[ $rc == 2 ]] && grep -q "needs a USER" "$dir/bad.log" || fail "acquire without a user: rc $rc"
set +e
SANDBOXD_IMAGE= "$sandboxd" acquire x >/dev/null 2>"$dir/bad.log"; rc=$?
set -e
[[ $rc == 2 ]] && grep -q -- "--image" "$dir/bad.log" || fail "acquire without an image: rc $rc"
set +e
"$sandboxd" acquire 'bad user' >/dev/null 2>"$dir/bad.log"; rc=$?
set -e
[[ $rc == 2 ]] && grep -q "bad user" "$dir/bad.log" || fail "a bad user name: rc $rc"
echo "sandboxd: ok"
