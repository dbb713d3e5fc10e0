#!/usr/bin/env bash
# The installed package, component by component (issue 17, part 1):
#  1. no file of the install holds a path of this machine's build: the build
#     and source directories, the install prefix (and no installed CMake file
#     the configured CMAKE_INSTALL_PREFIX); the version file is there;
#  2. COMPONENTS core, then linking sessionkit::redis: configures (Redis's
#     dependencies are found, so the target exists); with OpenSSL hidden
#     (CMAKE_DISABLE_FIND_PACKAGE_OpenSSL) the configure stops, naming
#     OpenSSL and the component to ask for;
#  3. COMPONENTS redis with OpenSSL hidden: find_package fails, naming OpenSSL;
#  4. a consumer per component, each asking for exactly that component
#     (test/cmake/component-consumer), builds and runs from the prefix, and
#     again after the prefix is moved elsewhere (relocation). Last: 2 and 3
#     only configure, so they fail fast.
# The messages checked are the ones doc/install.md documents.
set -euo pipefail
build_dir=$1
source_dir=$2
# shellcheck source=consumer-lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/consumer-lib.sh"
fail() { echo "FAIL: $*"; exit 1; }
says() { # LOG TEXT: LOG holds TEXT, with CMake's line wrapping undone
  tr -s ' \n' ' ' <"$1" | grep -qF -- "$2"
}
configure() { # SOURCE BUILD [ARGS...]: configure a consumer against $prefix, log in BUILD.log
  local src=$1 bin=$2; shift 2
  cmake -S "$src" -B "$bin" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release "$@" >"$bin.log" 2>&1
}

install_build "$build_dir"
prefix=$work/prefix
cmake_dir=$prefix/share/cmake/sessionkit

# 1. No absolute path of the build machine in any installed file.
configured_prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build_dir/CMakeCache.txt")
for path in "$(cd "$build_dir" && pwd -P)" "$(cd "$source_dir" && pwd -P)" "$build_dir" "$source_dir" "$prefix"; do
  if hits=$(grep -rlF -- "$path" "$prefix"); then
    fail "installed files hold the path $path:"$'\n'"$hits"
  fi
done
# The configured prefix (/usr/local unless set) may be a short path such as
# /usr that headers name for other reasons: looked for in the CMake files,
# the only files the install writes rather than copies.
if [[ -n ${configured_prefix%/} ]] && hits=$(grep -rlF -- "${configured_prefix%/}/" "$cmake_dir"); then
  fail "installed CMake files hold the configured install prefix $configured_prefix:"$'\n'"$hits"
fi
[[ -f $cmake_dir/sessionkit-config-version.cmake ]] || fail "no sessionkit-config-version.cmake beside the config"
grep -q "only if the requested major version is the same" "$cmake_dir/sessionkit-config-version.cmake" || fail "the version file is not SameMajorVersion"

# The components this install provides: one targets file each.
components=()
for f in "$cmake_dir"/sessionkit-*-targets.cmake; do
  c=${f##*/sessionkit-}
  components+=("${c%-targets.cmake}")
done
[[ ${#components[@]} -ge 2 ]] || fail "no component targets files in $cmake_dir"
list=$(IFS=';'; echo "${components[*]}")
echo "components: ${components[*]}"

# 2. COMPONENTS core, then sessionkit::redis.
if [[ " ${components[*]} " == *" redis "* ]]; then
  configure "$source_dir/test/cmake/core-links-redis" "$work/core-redis" \
    || { cat "$work/core-redis.log"; fail "COMPONENTS core + sessionkit::redis does not configure"; }
  if configure "$source_dir/test/cmake/core-links-redis" "$work/core-redis-nossl" \
    -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=TRUE; then
    fail "COMPONENTS core + sessionkit::redis configured without OpenSSL"
  fi
  says "$work/core-redis-nossl.log" "Target app links sessionkit::redis, which this sessionkit does not define: sessionkit component redis needs OpenSSL, which was not found" || { cat "$work/core-redis-nossl.log"; fail "not the documented message (core + sessionkit::redis)"; }
  says "$work/core-redis-nossl.log" "find_package(sessionkit CONFIG REQUIRED COMPONENTS redis)" || { cat "$work/core-redis-nossl.log"; fail "the message does not say which component to ask for"; }

  # 3. COMPONENTS redis without OpenSSL.
  if configure "$source_dir/test/cmake/core-links-redis" "$work/redis-nossl" \
    -DSESSIONKIT_ASK=redis -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=TRUE; then
    fail "find_package(sessionkit COMPONENTS redis) succeeded without OpenSSL"
  fi
  says "$work/redis-nossl.log" "Reason given by package: sessionkit component redis needs OpenSSL, which was not found" || { cat "$work/redis-nossl.log"; fail "not the documented message (COMPONENTS redis, no OpenSSL)"; }
  echo "COMPONENTS core + sessionkit::redis, and a missing dependency: ok"
fi

# 4. One consumer per component, from the prefix and then from a moved one.
consume_each() { # BUILD_DIR
  configure "$source_dir/test/cmake/component-consumer" "$1" -DSESSIONKIT_COMPONENTS="$list" \
    || { cat "$1.log"; fail "the component consumers do not configure against $prefix"; }
  cmake --build "$1" >"$1.build.log" 2>&1 || { cat "$1.build.log"; fail "the component consumers do not build"; }
  for c in "${components[@]}"; do
    "$1/$c/consumer_$c" >"$1.$c.run.log" 2>&1 || { cat "$1.$c.run.log"; fail "consumer_$c failed"; }
  done
}
consume_each "$work/each"
mkdir -p "$work/moved"
mv "$prefix" "$work/moved/elsewhere"
prefix=$work/moved/elsewhere
consume_each "$work/each-moved"
echo "one consumer per component, from the prefix and moved: ok"

echo "install components: ok"
