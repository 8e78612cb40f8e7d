#!/bin/sh
# Fresh Debian 12 machine -> built kprior with its bundled data: Debian packages, Release
# build, then data/prepare.sh.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
sh "$root/scripts/install-deps.sh"
sh "$root/scripts/build.sh"
sh "$root/data/prepare.sh"
