#!/usr/bin/env bash
# Installs llama.cpp as users get it from npm (node-llama-cpp with its prebuilt CPU libraries, no
# CUDA/Vulkan packages, nothing downloaded or built by its post-install) into DEST, takes the C
# headers from the llama.cpp source the package ships (llama/gitRelease.bundle) and builds two
# small tools against the shipped libraries: ggml_ref (ggml's own quantize/dequantize) and
# llama_logits (llama.cpp's logits and tokenization of a GGUF file). The GGUF tests use DEST and
# skip with a message where it is absent. Usage: tests/llamacpp/install.sh DEST
set -euo pipefail
VERSION=3.22.1
HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$1"
DEST="$(cd "$1" && pwd)"
STAMP="$DEST/.installed-$VERSION-$(cat "$HERE"/*.c | sha1sum | cut -c1-12)"
[ -f "$STAMP" ] && exit 0
command -v npm >/dev/null || { echo "llama.cpp: npm not found (apt-get install nodejs npm)" >&2; exit 1; }
cd "$DEST"
[ -f package.json ] || echo '{"name": "quantscope-llamacpp", "private": true}' > package.json
NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional --save-exact --no-audit --no-fund --loglevel=error \
  "node-llama-cpp@$VERSION" "@node-llama-cpp/linux-x64@$VERSION" >/dev/null
LIBDIR="$DEST/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
rm -rf src
git -c advice.detachedHead=false clone -q --no-checkout node_modules/node-llama-cpp/llama/gitRelease.bundle src
git -C src checkout -q HEAD -- include ggml/include
CFLAGS=(-O2 -std=c11 -Isrc/include -Isrc/ggml/include -L"$LIBDIR" -Wl,-rpath,"$LIBDIR")
cc "${CFLAGS[@]}" "$HERE/ggml_ref.c" -o ggml_ref -l:libggml-base.so
cc "${CFLAGS[@]}" -DQS_LLAMA_LIBDIR="\"$LIBDIR\"" "$HERE/llama_logits.c" -o llama_logits \
  -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -lm
rm -f .installed-*
touch "$STAMP"
echo "llama.cpp: node-llama-cpp $VERSION (llama.cpp $(cat node_modules/node-llama-cpp/llama/llama.cpp.info.json | grep -o 'v[0-9.]*' | head -1)) in $DEST"
