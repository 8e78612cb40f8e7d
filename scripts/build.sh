#!/bin/sh
# Configures (once) and builds kprior in Release into build/ (KPRIOR_BUILD_DIR overrides).
# Extra arguments go to the configure step, e.g. -DKPRIOR_BUILD_BENCH=ON.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KPRIOR_BUILD_DIR:-$root/build}
jobs=${KPRIOR_JOBS:-$(nproc)}
if [ ! -f "$build/CMakeCache.txt" ] || [ $# -gt 0 ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
fi
cmake --build "$build" -j "$jobs"
