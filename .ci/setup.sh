#!/usr/bin/env bash
# Sets up a fresh Debian bookworm machine for QuantScope and builds it into build/:
# installs the Debian packages (apt-get), configures with CMake + Ninja and builds everything.
# Extra CMake arguments: QS_CMAKE_ARGS="-DQS_BUILD_UI=OFF" bash .ci/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake ninja-build ccache pkg-config
      qt6-base-dev libqt6svg6 qt6-svg-dev libqcustomplot-dev libqcustomplot2.1-qt6
      libtorch-dev libyaml-cpp-dev libsqlite3-dev libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev
      libpcre2-dev libsentencepiece-dev libpagmo-dev libbenchmark-dev libbz2-dev
      libopenblas0-pthread)   # Debian's LibTorch multiplies through libblas.so.3: OpenBLAS is ~30x faster

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

# llama.cpp as users install it (npm: node-llama-cpp with prebuilt CPU libraries) for the GGUF
# tests, which skip with a message where it cannot be installed.
if ! command -v npm >/dev/null; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q nodejs npm || true
fi

# ccache: key on paths relative to the checkout so a fresh clone reuses earlier objects;
# the sloppiness lets precompiled headers be cached.
export CCACHE_BASEDIR="$PWD"
export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"

JOBS="${QS_JOBS:-$(nproc)}"
# shellcheck disable=SC2086
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${QS_CMAKE_ARGS:-}
cmake --build build -j"$JOBS"
echo "setup: built build/app/qscope$( [ -x build/app/quantscope ] && echo ' and build/app/quantscope')"
bash tests/llamacpp/install.sh build/llamacpp ||
  echo "setup: llama.cpp (node-llama-cpp) could not be installed; the GGUF runtime tests will be skipped"
# Slurm 22.05 + munge (Debian) for the cluster tests, which start a one-node cluster on loopback
# per test (tests/slurm/cluster.sh) and skip with a message where it cannot start.
bash tests/slurm/cluster.sh install ||
  echo "setup: Slurm (slurmctld, slurmd, slurm-client, munge) could not be installed; the Slurm tests will be skipped"
