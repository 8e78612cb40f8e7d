#!/bin/sh
# Verifies the bundled datasets against data/SHA256SUMS (run from anywhere).
set -eu
cd "$(dirname "$0")"
for f in $(awk '{print $2}' SHA256SUMS); do
  if [ ! -f "$f" ]; then
    echo "data: $f missing; run data/prepare.sh" >&2
    exit 1
  fi
done
sha256sum -c --quiet SHA256SUMS && echo "data: checksums verified ($(wc -l < SHA256SUMS) files)"
