#!/usr/bin/env bash
# Whole-model check of QuantEase against GPTQ (issue 16, docs/BENCHMARKS.md "QuantEase against its
# reference"): 3-bit per-channel GPTQ, QuantEase (default start: best of the descent from W and
# GPTQ's rounding polished) and QuantEase from W alone (the reference's start), 30 sweeps, 128 x 256
# calibration tokens, for three calibration seeds, each model calibrated and evaluated in its own
# domain (out of it, on WikiText-2, neither model ranks weight quantizers: docs/BENCHMARKS.md
# "Perplexity after weight quantization"):
#   stories260K  text sampled from the model itself (generate, temperature 1): calibration file
#                seed 1, evaluation file seed 2 (disjoint draws), first 128 windows of 256;
#   demo         evaluation on the last 400 KB of austen.txt (inside the 5 % tail held out of its
#                training; holds sample.txt), all windows of 256; calibration on the rest of
#                austen.txt (its training text, same author: the train/test split analogue) and,
#                as a cross-domain case, on Brown (also training text).
# Prints one markdown row per model and seed. The sampled files are written once under $OUT.
#
#   bash tests/bench/quantease_models.sh [SEEDS...]     (default seeds 0 1 2; ONLY=stories|austen|brown)
set -euo pipefail
cd "$(dirname "$0")/../.."
Q=${Q:-build/app/qscope}
SHARED=${SHARED_DATA:-../shared/data}
OUT=${OUT:-/tmp/qs_qe_models}
SEEDS=${*:-0 1 2}
mkdir -p "$OUT"
STORIES=$SHARED/models/stories260K/stories260K.gguf
[ -f "$OUT/stories_calib.txt" ] ||
  "$Q" -q generate "$STORIES" --temperature 1 --samples 120 --max-new 512 --seed 1 -o "$OUT/stories_calib.txt"
[ -f "$OUT/stories_eval.txt" ] ||
  "$Q" -q generate "$STORIES" --temperature 1 --samples 120 --max-new 512 --seed 2 -o "$OUT/stories_eval.txt"
[ -f "$OUT/austen_tail.txt" ] || tail -c 400000 "$SHARED/text/austen.txt" > "$OUT/austen_tail.txt"
[ -f "$OUT/austen_head.txt" ] || head -c -400000 "$SHARED/text/austen.txt" > "$OUT/austen_head.txt"

ppl() {  # ppl MODEL SEED CALIB EVAL WINDOWS ARGS... -> "FP quantized" perplexity
  local model=$1 seed=$2 calib=$3 eval=$4 windows=$5; shift 5
  "$Q" -q quantize "$model" --wbits 3 --nsamples 128 --seqlen 256 --seed "$seed" --dataset "$calib" --eval "$eval" \
    --eval-seqlen 256 --eval-limit-windows "$windows" --data-dir "$SHARED" --json --no-progress "$@" |
    python3 -c 'import json,sys; p=list(json.load(sys.stdin)["perplexity"].values())[0]; print("%.4f %.4f" % (p["fp"], p["quantized"]))'
}

echo "| model (calibration → evaluation) | seed | FP | GPTQ w3 | QuantEase w3 | QuantEase w3 from W (reference start) |"
echo "|---|---:|---:|---:|---:|---:|"
for spec in "stories:stories260K (own samples):$STORIES:$OUT/stories_calib.txt:$OUT/stories_eval.txt:128" \
            "austen:demo (Austen → Austen tail):projects/demo/model:$OUT/austen_head.txt:$OUT/austen_tail.txt:0" \
            "brown:demo (Brown → Austen tail):projects/demo/model:brown:$OUT/austen_tail.txt:0"; do
  IFS=: read -r key name model calib eval windows <<< "$spec"
  [ -z "${ONLY:-}" ] || [ "$ONLY" = "$key" ] || continue
  for seed in $SEEDS; do
    read -r fp gptq < <(ppl "$model" "$seed" "$calib" "$eval" "$windows" --method gptq)
    read -r _ qe < <(ppl "$model" "$seed" "$calib" "$eval" "$windows" --method quantease)
    read -r _ qew < <(ppl "$model" "$seed" "$calib" "$eval" "$windows" --method quantease --quantease-init weights)
    echo "| $name | $seed | $fp | $gptq | $qe | $qew |"
  done
done
