#!/usr/bin/env bash
# End-to-end check of the example daemon: with --demo 3, every demo session
# is created once, demo-1 (kept alive) never expires, demo-2 and demo-3 get
# one timeout_warning and one expired event each, bad flags exit 2, and the
# daemon exits 0 at --run-for.
set -euo pipefail
sessiond=$1
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

# Generous margins: demo-1 is touched every 1.5 s against a 3 s timeout, so a
# loaded CI machine does not expire it by accident.
"$sessiond" --listen 127.0.0.1:0 --events - --demo 3 --idle-timeout 3 --janitor-interval 0.2 --warning-window 2 --run-for 6 >"$out" 2>"$err"

count() { grep -c "\"type\":\"$1\",\"session_id\":\"$2\"" "$out" || true; }
fail() { echo "FAIL: $*"; echo "--- events"; cat "$out"; echo "--- log"; cat "$err"; exit 1; }

for id in demo-1 demo-2 demo-3; do
  [[ $(count created "$id") == 1 ]] || fail "$id: expected one created event"
done
[[ $(count expired demo-1) == 0 ]] || fail "demo-1 was kept alive but expired"
for id in demo-2 demo-3; do
  [[ $(count expired "$id") == 1 ]] || fail "$id: expected exactly one expired event"
  [[ $(count timeout_warning "$id") == 1 ]] || fail "$id: expected exactly one timeout_warning"
done
grep -q '"msg":"sessiond stopped"' "$err" || fail "no clean stop logged"
grep -q '"expired_total":2' "$err" || fail "stop line does not count 2 expired sessions"

if "$sessiond" --idle-timeout abc >/dev/null 2>"$err"; then fail "--idle-timeout abc was accepted"; fi
grep -q "idle-timeout" "$err" || fail "the error for --idle-timeout abc does not name the flag"
echo "sessiond demo: ok"
