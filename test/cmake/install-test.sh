#!/usr/bin/env bash
# Installs this build into a temporary prefix, then configures, builds and
# runs test/cmake/consumer against it with find_package(sessionkit ...
# COMPONENTS core http redis process), and test/cmake/nats-consumer (core
# nats) when the build has nats.c. Also checks that asking for an
# unknown component fails, naming it, and that the package version is
# SameMajorVersion: 0.1 is accepted, 1.0 is not.
set -euo pipefail
build_dir=$1
source_dir=$2
# shellcheck source=consumer-lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/consumer-lib.sh"

install_build "$build_dir"
build_consumer "$source_dir/test/cmake/consumer"
"$work/build/consumer"

# A component that does not exist must make find_package fail.
sed 's/COMPONENTS core http redis process)/COMPONENTS core http redis process no_such_component)/' \
  "$source_dir/test/cmake/consumer/CMakeLists.txt" >"$work/CMakeLists.txt"
cp "$source_dir/test/cmake/consumer/main.cpp" "$work/"
if cmake -S "$work" -B "$work/bad" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/bad.log" 2>&1; then
  echo "FAIL: find_package accepted an unknown component"; exit 1
fi
grep -q "no_such_component" "$work/bad.log" || { echo "FAIL: the error does not name the component"; cat "$work/bad.log"; exit 1; }

# Another major version must not be taken for this one.
sed 's/find_package(sessionkit 0.1 /find_package(sessionkit 1.0 /' \
  "$source_dir/test/cmake/consumer/CMakeLists.txt" >"$work/CMakeLists.txt"
if cmake -S "$work" -B "$work/major" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/major.log" 2>&1; then
  echo "FAIL: find_package(sessionkit 1.0) accepted version 0.x"; exit 1
fi
grep -q "version" "$work/major.log" || { echo "FAIL: the version error does not say so"; cat "$work/major.log"; exit 1; }
# The nats component, when this build has it: its config finds nats.c with
# pkg-config (Debian's own CMake package for nats.c is broken).
if [[ -f "$work"/prefix/share/cmake/sessionkit/sessionkit-nats-targets.cmake ]]; then
  cmake -S "$source_dir/test/cmake/nats-consumer" -B "$work/nats" -G Ninja \
    -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >"$work/nats.log" 2>&1 \
    || { cat "$work/nats.log"; exit 1; }
  cmake --build "$work/nats" >/dev/null
  "$work/nats/nats_consumer"
  # Without nats.c, asking for the component fails and says what is missing.
  if PKG_CONFIG_LIBDIR=/nonexistent PKG_CONFIG_PATH='' cmake -S "$source_dir/test/cmake/nats-consumer" \
    -B "$work/nats-missing" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/nats-missing.log" 2>&1; then
    echo "FAIL: find_package(sessionkit COMPONENTS nats) succeeded without libnats"; exit 1
  fi
  grep -q "needs pkg-config module libnats" "$work/nats-missing.log" \
    || { echo "FAIL: the error does not name libnats"; cat "$work/nats-missing.log"; exit 1; }
fi
echo "install + find_package: ok"
