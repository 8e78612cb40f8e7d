#!/bin/sh
# README command 1: set up everything, then run the main job on the bundled data.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KPRIOR_BUILD_DIR:-$root/build}
sh "$root/scripts/setup.sh"
"$build/apps/kprior-run" --data-dir "$root/data" --out "$root/out/quickstart"
