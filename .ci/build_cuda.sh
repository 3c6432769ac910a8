#!/usr/bin/env bash
# Builds QuantScope with the CUDA kernels dispatched from core (QS_WITH_CUDA=ON) on a GPU machine
# that has PyTorch: LibTorch is the one inside the pip package, Qt is not needed (QS_BUILD_UI=OFF),
# and C++ dependencies that are not installed and cannot be installed (no root) are fetched as
# Debian/Ubuntu .deb files and unpacked with `dpkg -x` into a private prefix.
#
#   bash .ci/build_cuda.sh                 # configure + build into build-cuda/
#   QS_BUILD_DIR=out bash .ci/build_cuda.sh
#   QS_DEB_DIR=/path/to/debs bash .ci/build_cuda.sh   # no apt: unpack the .deb files found there
#   QS_CUDA_ARCHS="80-real;90-real;90-virtual"        # the default: Ampere, Hopper SASS + PTX
#
# Then: ctest --test-dir build-cuda -L gpu --output-on-failure   (the *_CUDA tests)
#       build-cuda/app/qscope info --system                        (devices, memory)
# The printed LD_LIBRARY_PATH line is needed to run binaries when a prefix was used.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
BUILD="${QS_BUILD_DIR:-build-cuda}"
PREFIX="${QS_DEPS_PREFIX:-$ROOT/.deps/cuda-prefix}"
ARCHS="${QS_CUDA_ARCHS:-80-real;90-real;90-virtual}"
JOBS="${QS_JOBS:-$(nproc)}"
say() { echo "build_cuda: $*" >&2; }
die() { say "$*"; exit 1; }

# --- CUDA compiler --------------------------------------------------------------------------
NVCC="$(command -v nvcc || true)"
for c in "${CUDA_HOME:-}/bin/nvcc" /usr/local/cuda/bin/nvcc; do
  [ -z "$NVCC" ] && [ -x "$c" ] && NVCC="$c"
done
[ -n "$NVCC" ] || die "no nvcc: install the CUDA Toolkit or set CUDA_HOME"
say "nvcc: $NVCC ($("$NVCC" --version | tail -1))"
# LibTorch's CMake package looks for the toolkit itself (Caffe2's cuda.cmake): point it at the same one.
CUDA_ROOT="$(cd "$(dirname "$NVCC")/.." && pwd)"
export PATH="$CUDA_ROOT/bin:$PATH" CUDACXX="$NVCC" CUDA_HOME="${CUDA_HOME:-$CUDA_ROOT}"

# --- LibTorch from the pip package -------------------------------------------------------------
PY="${PYTHON:-python3}"
TORCH_INFO="$("$PY" - <<'PYEOF' 2>/dev/null || true
import torch
print(torch.utils.cmake_prefix_path)
print(torch.version.cuda or "")
print(int(torch._C._GLIBCXX_USE_CXX11_ABI))
print(torch.__version__)
PYEOF
)"
[ -n "$TORCH_INFO" ] || die "$PY cannot import torch: pip install torch (a CUDA build), or set PYTHON"
TORCH_PREFIX="$(sed -n 1p <<<"$TORCH_INFO")"
TORCH_CUDA="$(sed -n 2p <<<"$TORCH_INFO")"
TORCH_ABI="$(sed -n 3p <<<"$TORCH_INFO")"
say "torch $(sed -n 4p <<<"$TORCH_INFO") at $TORCH_PREFIX, CUDA ${TORCH_CUDA:-none}, CXX11 ABI $TORCH_ABI"
[ -n "$TORCH_CUDA" ] || die "this torch has no CUDA: install a CUDA wheel (pip install torch --index-url https://download.pytorch.org/whl/cu126)"
# Debian's yaml-cpp, GoogleTest, ... use the C++11 std::string ABI; a pre-CXX11-ABI LibTorch
# (pip wheels before torch 2.7) cannot link with them.
[ "$TORCH_ABI" = 1 ] || die "torch was built with the pre-C++11 ABI: use torch >= 2.7 or the cxx11-abi LibTorch zip (CMAKE_PREFIX_PATH)"

# --- C++ dependencies: installed, installable, or unpacked .deb files ---------------------------
PKGS=(cmake ninja-build pkg-config libyaml-cpp-dev libsqlite3-dev libgtest-dev libgmock-dev nlohmann-json3-dev
      libcli11-dev libpcre2-dev libsentencepiece-dev libpagmo-dev libbenchmark-dev libbz2-dev)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
if command -v dpkg-query >/dev/null; then
  for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done
else
  missing=("${PKGS[@]}")
fi

unpack() {  # unpack one .deb into $PREFIX (dpkg -x, or ar + tar where dpkg is absent)
  if command -v dpkg >/dev/null; then
    dpkg -x "$1" "$PREFIX"
  else
    local t; t="$(mktemp -d)"
    (cd "$t" && ar x "$1" && tar -xf data.tar.* -C "$PREFIX")
    rm -rf "$t"
  fi
}

EXTRA_PREFIX=""
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null && $SUDO true 2>/dev/null &&
     $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"; then
    say "installed ${missing[*]}"
  else
    mkdir -p "$PREFIX"
    DEBS="${QS_DEB_DIR:-$ROOT/.deps/debs}"
    mkdir -p "$DEBS"
    if command -v apt-get >/dev/null && [ -z "${QS_DEB_DIR:-}" ]; then
      # The packages and every dependency that is not installed here, as .deb files (no root).
      mapfile -t want < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
                            --no-breaks --no-replaces --no-enhances "${missing[@]}" | grep '^[a-z0-9]' | sort -u)
      get=()
      for p in "${want[@]}"; do installed "$p" || get+=("$p"); done
      say "fetching ${#get[@]} .deb files into $DEBS"
      (cd "$DEBS" && apt-get download "${get[@]}")
    fi
    shopt -s nullglob
    debs=("$DEBS"/*.deb)
    ((${#debs[@]})) || die "missing ${missing[*]} and no .deb files in $DEBS (set QS_DEB_DIR)"
    for d in "${debs[@]}"; do unpack "$d"; done
    say "unpacked ${#debs[@]} packages into $PREFIX"
    EXTRA_PREFIX="$PREFIX/usr"
    export PATH="$PREFIX/usr/bin:$PATH"
    export PKG_CONFIG_PATH="$PREFIX/usr/lib/x86_64-linux-gnu/pkgconfig:$PREFIX/usr/lib/pkgconfig:$PREFIX/usr/share/pkgconfig:${PKG_CONFIG_PATH:-}"
    export LD_LIBRARY_PATH="$PREFIX/usr/lib/x86_64-linux-gnu:$PREFIX/usr/lib:${LD_LIBRARY_PATH:-}"
    # Unpacked .pc files still say prefix=/usr; CMake package files locate themselves.
    find "$PREFIX" -name '*.pc' -exec sed -i "s|^prefix=/usr\$|prefix=$PREFIX/usr|" {} +
  fi
fi

# --- configure and build ------------------------------------------------------------------------
GENERATOR=(-G Ninja); command -v ninja >/dev/null || GENERATOR=()
mkdir -p "$BUILD"
# QS_CMAKE_ARGS is split into words on purpose (several -D options).
# shellcheck disable=SC2086
cmake -S . -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DQS_WITH_CUDA=ON -DQS_BUILD_UI=OFF \
  -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DCUDAToolkit_ROOT="$CUDA_ROOT" \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX${EXTRA_PREFIX:+;$EXTRA_PREFIX}" ${QS_CMAKE_ARGS:-} | tee "$BUILD/configure.log"
grep -q "CUDA LibTorch=ON" "$BUILD/configure.log" ||
  die "CMake did not find CUDA in LibTorch (see $BUILD/configure.log, line 'QuantScope: ... CUDA LibTorch=')"
cmake --build "$BUILD" -j"$JOBS"
say "built $BUILD/app/qscope; GPU tests: ctest --test-dir $BUILD -L gpu --output-on-failure"
[ -z "$EXTRA_PREFIX" ] || say "to run: export LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
