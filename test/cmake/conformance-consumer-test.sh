#!/usr/bin/env bash
# Installs this build into a temporary prefix, then builds
# test/cmake/conformance-consumer against it, as a store author outside
# this tree would (find_package(sessionkit 0.1 ... COMPONENTS core testing)),
# and runs sessionkit's store conformance suite against its toy store.
set -euo pipefail
build_dir=$1
source_dir=$2
# shellcheck source=consumer-lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/consumer-lib.sh"

install_build "$build_dir"
build_consumer "$source_dir/test/cmake/conformance-consumer"
bin="$work/build/toy_store_conformance"
if ! "$bin" --color_output=no --report_level=short >"$work/run.log" 2>&1; then
  cat "$work/run.log"; echo "FAIL: the toy store does not pass the conformance suite"; exit 1
fi
cat "$work/run.log"
# The suite really ran (a tuple of no factories would pass with no cases).
"$bin" --list_content >"$work/list.txt" 2>&1
grep -q "create_is_create_if_absent" "$work/list.txt" \
  || { echo "FAIL: the conformance cases are not in the consumer's test tree"; cat "$work/list.txt"; exit 1; }
echo "out-of-tree store conformance: ok"
