#!/usr/bin/env bash
# Whole-model check of QuantEase against GPTQ (issue 16, docs/BENCHMARKS.md "QuantEase against its
# reference"): 3-bit per-channel GPTQ, QuantEase (default start: best of W and GPTQ's rounding) and
# QuantEase from W alone (the reference's start) on stories260K and the demo model, for three
# calibration seeds (128 x 256 tokens of WikiText-2 validation), perplexity on the whole WikiText-2
# test split (GPTQ protocol, 256-token windows). Prints one markdown row per model and seed.
#
#   bash tests/bench/quantease_models.sh [SEEDS...]     (default seeds 1 2 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
Q=${Q:-build/app/qscope}
SHARED=${SHARED_DATA:-../shared/data}
SEEDS=${*:-1 2 3}

ppl() {  # ppl MODEL SEED ARGS... -> quantized wikitext2 perplexity
  local model=$1 seed=$2; shift 2
  "$Q" -q quantize "$model" --wbits 3 --nsamples 128 --seqlen 256 --seed "$seed" --eval wikitext2 \
    --eval-seqlen 256 --data-dir "$SHARED" --json --no-progress "$@" |
    python3 -c 'import json,sys; p=json.load(sys.stdin)["perplexity"]["wikitext2"]; print("%.3f %.3f" % (p["fp"], p["quantized"]))'
}

echo "| model | seed | FP16 | GPTQ w3 | QuantEase w3 | QuantEase w3 from W (reference start) |"
echo "|---|---:|---:|---:|---:|---:|"
for spec in "stories260K:$SHARED/models/stories260K/hf" "demo:projects/demo/model"; do
  name=${spec%%:*} model=${spec#*:}
  for seed in $SEEDS; do
    read -r fp gptq < <(ppl "$model" "$seed" --method gptq)
    read -r _ qe < <(ppl "$model" "$seed" --method quantease)
    read -r _ qew < <(ppl "$model" "$seed" --method quantease --quantease-init weights)
    echo "| $name | $seed | $fp | $gptq | $qe | $qew |"
  done
done
