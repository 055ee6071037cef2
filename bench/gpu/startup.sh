#!/bin/bash
# Where the nanogpt template's time outside training goes, on one GPU (device machine):
#
#   bench/gpu/startup.sh CORPUS OUT [REFERENCE]
#
# Prepares the corpus, then runs train.py as the harness does (budget, seed, the task's
# compile caches): a cold run (empty caches), a warm run, and a run capped at 16 GB
# (NANOGPT_MEMORY_GB). REFERENCE, if given, is another single-file trainer that prints
# tokens_per_sec and outside_training; it runs cold then warm, for the ratios.
# BUDGET (default 60) sets the training seconds. Needs python3 with torch 2.x, numpy, regex.
set -u
corpus=$1 out=$2 reference=${3:-}
budget=${BUDGET:-60}
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
mkdir -p "$out"
cp "$here"/templates/nanogpt/*.py "$work"/
cd "$work"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c "import torch; print(torch.__version__)"; date -u; } > "$out/gpu.txt"
AR_CACHE_DIR=$work/data python3 prepare.py --text "$corpus" > "$out/prepare.log" 2>&1
run() {
  local name=$1 caches=$2 script=$3 seconds=$4
  shift 4
  start=$(date +%s%N)
  env AR_TIME_BUDGET="$seconds" AR_SEED=42 AR_CACHE_DIR="$work/data" PYTHONUNBUFFERED=1 \
    TORCHINDUCTOR_CACHE_DIR="$caches/inductor" TRITON_CACHE_DIR="$caches/triton" "$@" \
    timeout 900 python3 "$script" > "$out/$name.log" 2>&1
  echo "wall_ms $(( ($(date +%s%N) - start) / 1000000 ))" >> "$out/$name.log"
  echo "== $name"
  grep -E '^(outside training|startup_seconds|outside_training|tokens_per_sec|training_seconds|total_seconds|peak_vram_mb|num_steps)' "$out/$name.log"
}
run template-cold "$work/caches-template" train.py "$budget"
run template-warm "$work/caches-template" train.py "$budget"
run template-16gb "$work/caches-template" train.py 20 NANOGPT_MEMORY_GB=16
if [ -n "$reference" ]; then
  cp "$reference" "$work/reference.py"
  run reference-cold "$work/caches-reference" reference.py "$budget"
  run reference-warm "$work/caches-reference" reference.py "$budget"
fi
