#!/bin/bash
# Device call 2: the whole run's share at a 60 s budget with the step compiled ahead: one
# GPU, overlap on, greedy, mutate, a fresh clone, six trials or 500 s (as on 2026-12-02).
set -u
. .gpu8/setup.sh
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python3 -c "import torch; print(torch.__version__)"; nproc; date -u; node --version; autoresearch --version; } > $OUT/gpu.txt 2>&1
cat $OUT/gpu.txt
PAIR_GPUS=0 MAX_TRIALS=6 bash bench/gpu/overlap.sh "$PWD/.gpu8/austen.txt" 60 0 500 $OUT/r60
cat $OUT/r60/summary.json
grep -E "^(== |outside|compiled ahead|note: comp|startup_seconds|training_seconds|val_bpb)" $OUT/r60/pair-on-replicates.txt | head -80
