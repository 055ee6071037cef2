#!/bin/bash
# The nanogpt template on a GPU machine, in phases (a warm machine keeps TASK between them):
#
#   bench/gpu/nanogpt.sh prepare   TASK CORPUS OUT   # init the task, run prepare.py, time it
#   bench/gpu/nanogpt.sh replicate TASK NAME OUT     # one 300 s replicate on GPU 0, as the harness runs it
#   bench/gpu/nanogpt.sh run       TASK N OUT [H]    # `autoresearch run` with mutate on every GPU, 60 s budget (H: --max-hours)
#   bench/gpu/nanogpt.sh confirm   TASK S OUT        # the confirm judge on one GPU, 60 s budget, for S seconds
#
# The run phase reads the corpus from NANOGPT_TEXT, as the task's setup does. Needs `autoresearch`, git, nvidia-smi and a python3 with torch 2.x, numpy and regex on PATH.
set -euo pipefail
phase=$1 task=$2 arg=$3 out=$4
mkdir -p "$out"
cache="$task/.autoresearch/cache"

case "$phase" in
prepare)
  [ -d "$task" ] || autoresearch init --template nanogpt "$task"
  mkdir -p "$cache"
  start=$(date +%s%N)
  (cd "$task" && AR_CACHE_DIR="$cache" python3 prepare.py --text "$arg") 2>&1 | tee "$out/prepare.log"
  echo "prepare_ms: $(( ($(date +%s%N) - start) / 1000000 ))" | tee -a "$out/prepare.log"
  ;;
replicate)
  # The environment the harness gives a replicate: budget, seed, the task's compile cache.
  start=$(date +%s%N)
  (cd "$task" && CUDA_VISIBLE_DEVICES=0 AR_TIME_BUDGET=300 AR_SEED=42 AR_CACHE_DIR="$cache" \
    TORCHINDUCTOR_CACHE_DIR="$cache/torch-inductor" TRITON_CACHE_DIR="$cache/triton" \
    PYTHONUNBUFFERED=1 python3 train.py) > "$out/$arg.log" 2>&1
  echo "wall_ms: $(( ($(date +%s%N) - start) / 1000000 ))" >> "$out/$arg.log"
  sed -n '/^---$/,$p' "$out/$arg.log"
  ;;
run)
  cd "$task"
  # A short budget, and each replicate says which GPUs it can see.
  sed -i 's/^budget: .*/budget: 60s/; s/^timeout: .*/timeout: 400s/' autoresearch.yaml
  sed -i "s|^run: .*|run: echo \"visible=\$CUDA_VISIBLE_DEVICES count=\$(python3 -c 'import torch; print(torch.cuda.device_count())')\"; python3 train.py|" autoresearch.yaml
  git -c user.name=bench -c user.email=bench@localhost commit -qam "60 s budget for a GPU run"
  nvidia-smi --query-gpu=timestamp,index,utilization.gpu,memory.used --format=csv,noheader -l 2 > "$out/smi.csv" &
  smi=$!
  autoresearch run --gpus all --tag gpu --max-trials "$arg" ${5:+--max-hours "$5"} 2>&1 | tee "$out/run.log" || true
  kill $smi
  cp .autoresearch/runs/gpu/results.tsv "$out/results.tsv"
  for f in .autoresearch/runs/gpu/trials/*/run.log; do
    n=$(basename "$(dirname "$f")")
    { echo "== trial $n"; grep -E '^visible=' "$f"; sed -n '/^---$/,$p' "$f"; } >> "$out/replicates.txt"
  done
  ;;
confirm)
  cd "$task"
  # The confirm judge: the baseline on 3 seeds gives the noise floor of val_bpb at 60 s.
  sed -i 's/^budget: .*/budget: 60s/; s/^timeout: .*/timeout: 400s/' autoresearch.yaml
  printf 'judge: { policy: confirm, seeds: 3 }\n' >> autoresearch.yaml
  git -c user.name=bench -c user.email=bench@localhost commit -qam "confirm judge, 60 s budget"
  # Ctrl-C when the time is up: the replicate in flight is recorded as interrupted.
  timeout -s INT "$arg" autoresearch run --gpus 0 --tag confirm 2>&1 | tee "$out/confirm.log" || true
  autoresearch status --tag confirm --trials 20 > "$out/confirm-status.txt" 2>&1 || true
  cp .autoresearch/runs/confirm/results.tsv "$out/confirm-results.tsv"
  for f in .autoresearch/runs/confirm/trials/*/run*.log; do
    { echo "== $f"; sed -n '/^---$/,$p' "$f"; } >> "$out/confirm-replicates.txt"
  done
  ;;
esac
