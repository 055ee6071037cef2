#!/bin/bash
# Device call A: the whole run's share at a 300 s budget through the harness, three trials
# (the baseline and two), with the step compiled ahead: one GPU, overlap on, greedy, mutate,
# a fresh clone, stop at 1150 s. The run outlasts one call, so it runs in a session of its
# own from copies outside the tree; call B waits for it.
set -u
. .gpu8/setup.sh
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python3 -c "import torch; print(torch.__version__)"; nproc; date -u; node --version; autoresearch --version; } > $OUT/gpu.txt 2>&1
cat $OUT/gpu.txt
S=/tmp/r300src; rm -rf /tmp/r300 $S; mkdir -p /tmp/r300 $S
cp bench/gpu/overlap.sh bench/gpu/overlap-summary.py .gpu8/austen.txt $S/
setsid nohup bash -c "PAIR_GPUS=0 MAX_TRIALS=3 bash $S/overlap.sh $S/austen.txt 300 0 1150 /tmp/r300; touch /tmp/r300/done" > /tmp/r300-driver.log 2>&1 < /dev/null &
for i in $(seq 1 114); do [ -e /tmp/r300/done ] && break; sleep 5; done
date -u; tail -3 /tmp/r300/pair-on.log 2>/dev/null; nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader
