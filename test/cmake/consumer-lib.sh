# test/cmake/consumer-lib.sh — sourced by the install tests: a temporary
# work dir (removed on exit), this build installed into $work/prefix, and
# build_consumer DIR, which configures and builds a consumer project
# against that prefix into $work/build (its configure log shown on failure).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

install_build() { # BUILD_DIR
  cmake --install "$1" --prefix "$work/prefix" >/dev/null
}

build_consumer() { # SOURCE_DIR
  cmake -S "$1" -B "$work/build" -G Ninja \
    -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >"$work/configure.log" 2>&1 \
    || { cat "$work/configure.log"; exit 1; }
  cmake --build "$work/build" >/dev/null
}
