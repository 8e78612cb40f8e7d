#!/bin/sh
# README command 2: build (if needed) and run the whole test suite through CTest.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KPRIOR_BUILD_DIR:-$root/build}
sh "$root/scripts/build.sh"
ctest --test-dir "$build" --output-on-failure -j "${KPRIOR_JOBS:-$(nproc)}"
