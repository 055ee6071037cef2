#!/bin/bash
# Overlap and two GPUs, on a machine with two: the nanogpt template with a BUDGET-second
# budget, the greedy judge and `mutate`, every run a fresh clone (cold compile caches)
# stopped with Ctrl-C after its time. Phase 1: two one-GPU runs at once with the same seed,
# GPU 0 without overlap and GPU 1 with it, for SECONDS_1. Phase 2: one run on both GPUs,
# with overlap, for SECONDS_2. A phase given 0 seconds is skipped (to split the two across
# calls of a limited length). Then bench/gpu/overlap-summary.py reads their ledgers.
#
#   bench/gpu/overlap.sh CORPUS BUDGET SECONDS_1 SECONDS_2 OUT
#
# PAIR_GPUS (default 0,1) are phase 2's GPUs: 0 measures one GPU on a machine with one.
# MAX_TRIALS ends each run after that many trials, so that no trial is cut by the stop.
#
# Needs `autoresearch`, git and python3 with torch 2.x, numpy and regex. CPU=1 tries the
# same on a machine without GPUs (the template shrunk to CPU size, CPU slots).
set -euo pipefail
corpus=$1 budget=$2 s1=$3 s2=$4 out=$5
here=$(cd "$(dirname "$0")" && pwd)
work=/tmp/overlap-bench
rm -rf "$work" && mkdir -p "$work" "$out"
commit() { git diff --quiet || git -c user.name=bench -c user.email=bench@localhost commit -qam "$1"; }

autoresearch init --template nanogpt "$work/origin" >/dev/null
(cd "$work/origin" &&
  sed -i "s/^budget: .*/budget: ${budget}s/; s/^judge: .*/judge: { policy: greedy }/" autoresearch.yaml &&
  commit "a short budget, the greedy judge")

# A clone with overlap on or off, its data prepared before its clock starts.
task() {
  git clone -q "$work/origin" "$work/$1"
  (cd "$work/$1" && sed -i "s/^overlap: .*/overlap: $2/" autoresearch.yaml && commit "overlap: $2" &&
    AR_CACHE_DIR="$PWD/.autoresearch/cache" python3 prepare.py --text "$corpus" > "$out/$1-prepare.txt" 2>&1)
}
# Runs a clone's task on the given slots until it is stopped, then notes the stop's time.
run() {
  local name=$1 seconds=$2 slots=$3
  [ -n "${CPU:-}" ] && slots="--slots $(tr , ' ' <<< "${slots#--gpus }" | wc -w)"
  (cd "$work/$name" && NANOGPT_TEXT="$corpus" timeout -s INT "$seconds" \
    autoresearch run $slots ${MAX_TRIALS:+--max-trials "$MAX_TRIALS"} --tag "$name" --sandbox none \
      > "$out/$name.log" 2>&1 || true
    date +%s%3N > "$work/$name/stopped")
}
if [ -n "${CPU:-}" ]; then
  export NANOGPT_VOCAB=512 NANOGPT_SEQ_LEN=64 NANOGPT_EVAL_TOKENS=1024 DEPTH=2 NANOGPT_HEAD_DIM=32 \
    NANOGPT_DEVICE_BATCH=8 NANOGPT_TOTAL_BATCH=1024
  sed -i 's/^resources: .*/resources: { gpus: 0 }/' "$work/origin/autoresearch.yaml"
  (cd "$work/origin" && commit "CPU")
fi

nvidia-smi --query-gpu=timestamp,index,utilization.gpu,memory.used --format=csv,noheader -l 2 > "$out/smi.csv" 2>/dev/null &
smi=$!
names=()
if [ "$s1" != 0 ]; then
  task solo-off false & a=$!
  task solo-on true & b=$!
  wait $a $b
  run solo-off "$s1" "--gpus 0" & a=$!
  run solo-on "$s1" "--gpus 1" & b=$!
  wait $a $b
  names+=(solo-off solo-on)
fi
if [ "$s2" != 0 ]; then
  task pair-on true
  run pair-on "$s2" "--gpus ${PAIR_GPUS:-0,1}"
  names+=(pair-on)
fi
kill $smi 2>/dev/null || true

python3 "$here/overlap-summary.py" "$work" "${names[@]}" > "$out/summary.json"
for name in "${names[@]}"; do
  for f in "$work/$name"/.autoresearch/runs/"$name"/trials/*/run*.log; do
    { echo "== $f"; grep -E '^outside training' "$f" || true; sed -n '/^---$/,$p' "$f"; } >> "$out/$name-replicates.txt"
  done
done
