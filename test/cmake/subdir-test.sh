#!/usr/bin/env bash
# Configures, builds and runs test/cmake/subdir-consumer, which adds this
# source tree with add_subdirectory. Also checks that nothing of ours but the
# library targets came with it (no tests, no examples).
set -euo pipefail
source_dir=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake -S "$source_dir/test/cmake/subdir-consumer" -B "$work/build" -G Ninja \
  -DSESSIONKIT_SOURCE_DIR="$source_dir" -DCMAKE_BUILD_TYPE=Release >"$work/configure.log" 2>&1 \
  || { cat "$work/configure.log"; exit 1; }
if ninja -C "$work/build" -t targets all | grep -q "sessionkit_unit\|sessiond"; then
  echo "FAIL: add_subdirectory brought our tests or examples along"; exit 1
fi
cmake --build "$work/build" >/dev/null
"$work/build/consumer"
echo "add_subdirectory consumer: ok"
