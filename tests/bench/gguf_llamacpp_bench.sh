#!/usr/bin/env bash
# GGUF files whose codes QuantScope's methods chose (qscope quantize --target gguf:T, exported as
# they are) against llama.cpp's own quantization of the same FP model (llama_model_quantize, no
# importance matrix), every perplexity measured by llama.cpp itself (tests/llamacpp/llama_logits
# ppl: its tokenization, F32 KV cache, non-overlapping windows). Needs build/app/qscope, the
# llama.cpp tools (bash tests/llamacpp/install.sh build/llamacpp) and ../shared/data.
#   bash tests/bench/gguf_llamacpp_bench.sh            # stories260K, WikiText-2 test, 40 x 256 tokens
#   MODEL=DIR TEXT=FILE NCTX=512 NW=40 bash tests/bench/gguf_llamacpp_bench.sh
#   TYPES="Q4_K:14 Q5_K:16" MODEL=DIR ...   # K-quant targets (widths of 256) vs llama-quantize's Q4_K_S/Q5_K_S
#   TYPES="Q3_K:11 Q2_K:10" MODEL=DIR ...   # vs llama-quantize's Q3_K_S and its Q2_K mix
#   KMIX="Q4_K_M:15 Q5_K_M:17" ...   # also llama-quantize's K mixes (rows of 256) for reference
set -euo pipefail
cd "$(dirname "$0")/../.."
Q=${QSCOPE:-build/app/qscope}
L=${LLAMA:-build/llamacpp/llama_logits}
DATA=${QS_DATA:-../shared/data}
MODEL=${MODEL:-$DATA/models/stories260K/hf}
TEXT=${TEXT:-$DATA/text/wikitext-2-raw-test.txt}
NCTX=${NCTX:-256}
NW=${NW:-40}
CAL=${CAL:-"--nsamples 128 --seqlen 256"}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
q() { "$Q" "$@" --data-dir "$DATA" --no-progress >/dev/null 2>&1; }
ppl() { "$L" ppl "$1" "$TEXT" "$NCTX" "$NW" 2>/dev/null | cut -d' ' -f1; }
"$Q" project init "$OUT/p" --model "$MODEL" >/dev/null
q quantize "$OUT/p" --method rtn --wbits 16 --eval none --nsamples 2 --seqlen 64
"$Q" export 1 -p "$OUT/p" --format gguf --gguf-type F32 -o "$OUT/f32.gguf" --no-parity --no-progress >/dev/null
printf "| file | llama.cpp perplexity (%s x %s tokens) |\n|---|---:|\n" "$NW" "$NCTX"
printf "| F32 (FP model) | %s |\n" "$(ppl "$OUT/f32.gguf")"
run=1
# TARGET:FTYPE: QuantScope's --target gguf:TARGET against llama-quantize's FTYPE (for Q4_K/Q5_K its
# Q4_K_S/Q5_K_S mix, 14/16: the nearest; attn_v and ffn_down of the first layers get Q5_K there;
# Q3_K_S, 11, is Q3_K throughout; the Q2_K mix, 10, gives attn_v/ffn_down/attn_output Q3_K or
# Q4_K, where QuantScope's Q2_K file is Q2_K throughout).
for t in ${TYPES:-Q4_0:2 Q5_0:8 Q8_0:7}; do
  type=${t%%:*}
  ftype=${t##*:}
  label=$type
  [ "$ftype" = 14 ] && label=Q4_K_S
  [ "$ftype" = 16 ] && label=Q5_K_S
  [ "$ftype" = 11 ] && label=Q3_K_S
  [ "$ftype" = 10 ] && label="Q2_K (mix)"
  "$L" quantize "$OUT/f32.gguf" "$OUT/llama-$type.gguf" "$ftype" 2>/dev/null
  printf "| %s, llama-quantize | %s |\n" "$label" "$(ppl "$OUT/llama-$type.gguf")"
  for m in rtn gptq quantease; do
    q quantize "$OUT/p" --method "$m" --target "gguf:$type" --eval none $CAL
    run=$((run + 1))
    "$Q" export "$run" -p "$OUT/p" --format gguf -o "$OUT/$m-$type.gguf" --no-parity --no-progress >/dev/null
    printf "| %s, QuantScope %s codes | %s |\n" "$type" "$m" "$(ppl "$OUT/$m-$type.gguf")"
  done
done
for t in ${KMIX:-}; do
  type=${t%%:*}
  "$L" quantize "$OUT/f32.gguf" "$OUT/llama-$type.gguf" "${t##*:}" 2>/dev/null
  printf "| %s, llama-quantize | %s |\n" "$type" "$(ppl "$OUT/llama-$type.gguf")"
done
