#!/usr/bin/env bash
# A 12-config sweep (RTN/GPTQ x 2/3/4 bits x per-channel/g32) of the demo model run by the local
# backend (one config after another in one process) and as a Slurm job array with 2 tasks at once
# on a one-node loopback cluster (tests/slurm/cluster.sh). Prints both wall times, the mean time a
# run spends in QuantScope (runs.duration_s) and the mean time Slurm gives each task (its elapsed),
# whose difference is the per-job overhead (process start, model load, scheduler).
#   bash tests/bench/sweep_bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
Q=${QSCOPE:-$ROOT/build/app/qscope}
OUT=$(mktemp -d)
CLUSTER=$OUT/cluster
trap 'bash tests/slurm/cluster.sh stop "$CLUSTER" >/dev/null 2>&1 || true; rm -rf "$OUT"' EXIT
TEXT=$ROOT/projects/demo/sample.txt
cat >"$OUT/grid.yaml" <<YAML
quantize: {nsamples: 16, seqlen: 128, dataset: $TEXT, eval: [$TEXT], eval_seqlen: 128}
grid:
  method: [rtn, gptq]
  wbits: [2, 3, 4]
  groupsize: [-1, 32]
YAML
for p in local slurm; do
  mkdir -p "$OUT/$p"
  printf 'name: %s\nmodel: %s\n' "$p" "$ROOT/projects/demo/model" >"$OUT/$p/project.yaml"
done
now() { date +%s.%N; }
t0=$(now)
"$Q" sweep "$OUT/local" --grid "$OUT/grid.yaml" --threads 1 --no-progress >"$OUT/local.txt" 2>/dev/null
t1=$(now)
bash tests/slurm/cluster.sh start "$CLUSTER" >/dev/null 2>&1
export SLURM_CONF=$CLUSTER/slurm.conf
t2=$(now)
"$Q" sweep "$OUT/slurm" --grid "$OUT/grid.yaml" --threads 1 --backend slurm --array-max 2 --poll 0.5 --no-progress \
  >"$OUT/slurm.txt" 2>/dev/null
t3=$(now)
mean() { sqlite3 "$1/runs.sqlite" "SELECT printf('%.2f', avg(duration_s)) FROM runs WHERE status = 'finished'"; }
njobs=$(sqlite3 "$OUT/slurm/runs.sqlite" "SELECT count(*) FROM runs WHERE status = 'finished'")
elapsed=$(sqlite3 "$OUT/slurm/runs.sqlite" "SELECT printf('%.2f', avg(elapsed_s)) FROM remote_jobs")
same=$(diff <(sqlite3 "$OUT/local/runs.sqlite" "SELECT r.config_yaml, m.key, m.value FROM runs r JOIN metrics m ON m.run_id = r.id WHERE m.key LIKE 'ppl%' ORDER BY 1, 2") \
            <(sqlite3 "$OUT/slurm/runs.sqlite" "SELECT r.config_yaml, m.key, m.value FROM runs r JOIN metrics m ON m.run_id = r.id WHERE m.key LIKE 'ppl%' ORDER BY 1, 2") >/dev/null && echo yes || echo NO)
printf "| backend | configs | wall | mean run (QuantScope) | mean Slurm task elapsed |\n|---|---:|---:|---:|---:|\n"
printf "| local (1 process, --threads 1) | 12 | %.1f s | %s s | - |\n" "$(echo "$t1 - $t0" | bc)" "$(mean "$OUT/local")"
printf "| slurm, 2 tasks at once (--threads 1 each) | %s | %.1f s | %s s | %s s |\n" "$njobs" "$(echo "$t3 - $t2" | bc)" \
  "$(mean "$OUT/slurm")" "$elapsed"
echo "perplexities identical to the local runs: $same"
