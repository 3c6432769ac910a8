#!/usr/bin/env bash
# The scale benchmark (issue 15, docs/BENCHMARKS.md "Real-size models"): writes seeded random-weight
# folders of real shapes and measures qscope on them with /usr/bin/time -v (wall time, peak RSS).
# Each step prints one markdown row; run the steps you need (the 7B quantize steps take hours on
# two cores). The folders are written under $SCALE_DIR (default /tmp/scale) and never committed.
#
#   bash tests/bench/scale_bench.sh info eval rtn rtn-eval gptq quantease export osplus ratio families
#
# Needs a built tree (build/) and ../shared/data (tokenizers, WikiText-2).
set -euo pipefail
cd "$(dirname "$0")/../.."
Q=${Q:-build/app/qscope}
MAKE=${MAKE_MODEL:-build/tests/bench/make_scale_model}
DIR=${SCALE_DIR:-/tmp/scale}
SHARED=${SHARED_DATA:-../shared/data}
LLAMA=$DIR/llama2-7b
OPT13=$DIR/opt-1.3b

need() {  # need SHAPE FOLDER
  [ -f "$2/model.safetensors.index.json" ] || "$MAKE" --shape "$1" -o "$2" --shared "$SHARED" >&2
}

# measure NAME COMMAND...: runs it under /usr/bin/time -v, prints "| NAME | wall | peak RSS | command |".
measure() {
  local name=$1; shift
  local log; log=$(mktemp)
  /usr/bin/time -v "$@" > "$log.out" 2> "$log"
  local wall rss
  wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$log" | awk '{printf "%.2f GiB", $NF / 1048576}')
  echo "| $name | $wall | $rss | \`$*\` |"
  grep -E "^  (ran|  ran)|perplexity:|quantized in|tokens/s" "$log.out" "$log" 2>/dev/null | sed 's/^/    /' >&2 || true
  rm -f "$log" "$log.out"
}

for step in "$@"; do
  case $step in
    info)
      need llama2-7b "$LLAMA"
      measure "info, LLaMA-2-7B shape" "$Q" info "$LLAMA" ;;
    eval)
      need llama2-7b "$LLAMA"
      measure "eval fp32, seqlen 2048, 4 windows (streams)" \
        "$Q" eval "$LLAMA" --dataset wikitext2 --seqlen 2048 --limit-windows 4 --no-progress ;;
    rtn)
      need llama2-7b "$LLAMA"
      measure "quantize RTN w4 g128, eval off" \
        "$Q" quantize "$LLAMA" --method rtn --wbits 4 --groupsize 128 --eval none --no-progress ;;
    rtn-eval)
      need llama2-7b "$LLAMA"
      measure "quantize RTN w4 g128, eval 2 x 2048" \
        "$Q" quantize "$LLAMA" --method rtn --wbits 4 --groupsize 128 --eval-seqlen 2048 --eval-limit-windows 2 --no-progress ;;
    gptq)
      need llama2-7b "$LLAMA"
      measure "quantize GPTQ w4 g128, 16 x 512 calibration, eval off" \
        "$Q" quantize "$LLAMA" --method gptq --wbits 4 --groupsize 128 --nsamples 16 --seqlen 512 --eval none --no-progress ;;
    quantease)
      need llama2-7b "$LLAMA"
      measure "quantize QuantEase w4 g128, 10 iterations, 16 x 512, eval off" \
        "$Q" quantize "$LLAMA" --method quantease --num-iter 10 --wbits 4 --groupsize 128 --nsamples 16 --seqlen 512 \
        --eval none --no-progress ;;
    export)
      # An RTN run stored in a project (grids on disk), then its exports: each tensor is read,
      # packed or dequantized and written when its shard is written.
      need llama2-7b "$LLAMA"
      P=$DIR/project-7b
      rm -rf "$P" "$DIR/export-gptq" "$DIR/export-fake"
      "$Q" project init "$P" --model "$LLAMA" > /dev/null
      measure "quantize RTN w4 g128 into a project, eval off" \
        "$Q" quantize "$P" --method rtn --wbits 4 --groupsize 128 --eval none --no-progress
      measure "export gptq (4-bit packed, float16 scales)" \
        "$Q" export 1 -p "$P" --format gptq -o "$DIR/export-gptq" --no-progress
      measure "export fake-fp16 (dequantized weights, float16)" \
        "$Q" export 1 -p "$P" --format fake-fp16 -o "$DIR/export-fake" --no-progress
      measure "export gguf Q4_0 (llama.cpp file, no load-back check)" \
        "$Q" export 1 -p "$P" --format gguf --gguf-type Q4_0 -o "$DIR/export-q4_0.gguf" --no-parity --no-progress
      du -sh "$DIR/export-gptq" "$DIR/export-fake" "$DIR/export-q4_0.gguf" >&2
      rm -rf "$DIR/export-gptq" "$DIR/export-fake" "$DIR/export-q4_0.gguf" ;;
    osplus)
      # OS+ (channel shift and scale, threshold searched per pair on the calibration activations)
      # before RTN, streamed; then the scales and shifts exported (a shifted LLaMA has no bias
      # after RMSNorm for a folder or GGUF export to hold).
      need llama2-7b "$LLAMA"
      P=$DIR/project-7b-osplus
      rm -rf "$P" "$DIR/export-ss"
      "$Q" project init "$P" --model "$LLAMA" > /dev/null
      measure "quantize OS+ then RTN w4 g128, 16 x 512 calibration, eval off" \
        "$Q" quantize "$P" --method rtn --wbits 4 --groupsize 128 --migrate osplus --nsamples 16 --seqlen 512 \
        --eval none --no-progress
      measure "export scale-shift" "$Q" export 1 -p "$P" --format scale-shift -o "$DIR/export-ss" --no-progress
      rm -rf "$DIR/export-ss" ;;
    ratio)
      need opt-1.3b "$OPT13"
      measure "OPT-1.3B eval fp32, whole model" \
        "$Q" eval "$OPT13" --dataset wikitext2 --seqlen 2048 --limit-windows 4 --exec whole --no-progress
      measure "OPT-1.3B eval fp32, streamed" \
        "$Q" eval "$OPT13" --dataset wikitext2 --seqlen 2048 --limit-windows 4 --exec stream --no-progress ;;
    families)
      # The other 7B shapes of the writer: Mistral-7B (GQA 8 of 32 heads, 14336-wide MLP, sliding
      # window) and OPT-6.7B (learned positions, biases, a 50272-token tied head): the header-only
      # info, data-free RTN of every block, and one streamed evaluation window.
      for shape in mistral-7b opt-6.7b; do
        need "$shape" "$DIR/$shape"
        measure "info, $shape shape" "$Q" info "$DIR/$shape"
        measure "quantize RTN w4 g128, eval off, $shape shape" \
          "$Q" quantize "$DIR/$shape" --method rtn --wbits 4 --groupsize 128 --eval none --no-progress
        measure "eval fp32, seqlen 512, 1 window (streams), $shape shape" \
          "$Q" eval "$DIR/$shape" --dataset wikitext2 --seqlen 512 --limit-windows 1 --no-progress
      done ;;
    *) echo "unknown step $step (info eval rtn rtn-eval gptq quantease export osplus ratio families)" >&2; exit 2 ;;
  esac
done
