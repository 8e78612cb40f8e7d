#!/bin/sh
# Installs the Debian 12 packages kprior needs (skips when all are present). Root or sudo.
set -eu
packages="build-essential cmake ninja-build ccache pkg-config git ca-certificates
  libtorch-dev libopenblas0-openmp libeigen3-dev libhdf5-dev libfmt-dev catch2
  libcli11-dev nlohmann-json3-dev zlib1g-dev libjpeg-dev libpng-dev
  dataset-fashion-mnist nodejs npm
  python3-numpy python3-matplotlib python3-h5py python3-ipykernel jupyter-nbconvert"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# npm may come from elsewhere (e.g. a Node.js install); then the Debian packages are not needed.
if command -v npm >/dev/null 2>&1; then
  missing=$(echo "$missing" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi
if [ -z "$(echo "$missing" | tr -d ' ')" ]; then
  echo "deps: all Debian packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "deps: installing$missing"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
