#!/usr/bin/env bash
# Runs a libFuzzer binary over its seed corpus for a bounded number of runs.
# New inputs go to a temp dir (the seeds in the repo stay as they are); a
# crash leaves its reproducer in the current directory and fails the test.
#   run-fuzzer.sh FUZZER SEED_DIR RUNS [extra libFuzzer flags...]
set -euo pipefail
fuzzer=$1 seeds=$2 runs=$3
shift 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
exec "$fuzzer" -runs="$runs" -print_final_stats=1 "$@" "$work" "$seeds"
