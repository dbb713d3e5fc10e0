#!/usr/bin/env bash
# check-headers.sh CXX DIR JOBS — compiles each unit listed in DIR/headers.txt
# ("component unit header" per line) with -fsyntax-only and the flags in
# DIR/flags-<component>.rsp, JOBS at a time; prints every header that does
# not compile on its own with its first errors, and the time taken.
set -euo pipefail
cxx=$1
dir=$2
jobs=${3:-2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)

export cxx dir out
# One compile per line; a failure leaves DIR/<n>.fail holding its errors.
# shellcheck disable=SC2016
xargs -P "$jobs" -L 1 bash -c '
  component=$0 unit=$1 header=$2
  log="$out/$(basename "$unit").log"
  if ! "$cxx" -fsyntax-only @"$dir/flags-$component.rsp" "$unit" >"$log" 2>&1; then
    { echo "== $header ($component): does not compile on its own"; head -n 20 "$log"; } >"$out/$(basename "$unit").fail"
  fi' <"$dir/headers.txt"

total=$(wc -l <"$dir/headers.txt")
failed=$(find "$out" -name '*.fail' | wc -l)
elapsed=$(( $(date +%s) - start ))
if [ "$failed" -gt 0 ]; then
  cat "$out"/*.fail
  echo "FAIL: $failed of $total headers do not compile on their own (${elapsed}s, $jobs at a time)"
  exit 1
fi
echo "ok: $total headers each compile on their own (${elapsed}s, $jobs at a time)"
