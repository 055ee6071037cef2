#!/bin/bash
# Device call 2: waits for call 1's run and keeps its records; then a lone replicate's cold
# start with the backward lowered with the forward (N) against the template as it is (A):
# 10 s budget, austen.txt, no gate; one fully cold run first (it writes the bytecode), then
# A, N, A, N with the compiled graphs and kernels deleted before each (bytecode kept).
set -u
. .gpu8/setup.sh
for i in $(seq 1 60); do [ -e /tmp/r300/done ] && break; sleep 5; done
date -u; ls /tmp/r300
mkdir -p $OUT/r300; cp /tmp/r300/summary.json /tmp/r300/*.log /tmp/r300/*.txt /tmp/r300/smi.csv $OUT/r300/ 2>/dev/null; cp /tmp/r300-driver.log $OUT/r300/
cat /tmp/r300/summary.json
grep -E "^(== |outside|compiled ahead|note: comp|startup_seconds|training_seconds|val_bpb)" /tmp/r300/pair-on-replicates.txt
W=/tmp/lazy; rm -rf $W; mkdir -p $W; cp templates/nanogpt/*.py $W/; cd $W
sed 's/^import torch.nn.functional as F$/import torch.nn.functional as F\nimport torch._functorch.config as _functorch_config\n\n_functorch_config.force_non_lazy_backward_lowering = True/' train.py > train_n.py
diff train.py train_n.py
AR_CACHE_DIR=$W/data python3 prepare.py --text $OLDPWD/.gpu8/austen.txt > $OUT/lazy-prepare.txt 2>&1 || { tail $OUT/lazy-prepare.txt; exit 1; }
run() {
  local name=$1 script=$2; s=$(date +%s%N)
  AR_TIME_BUDGET=10 AR_SEED=42 AR_CACHE_DIR=$W/data timeout 200 python3 $script > $OUT/lazy-$name.txt 2>&1
  echo "== $name rc $? wall_ms $(( ($(date +%s%N) - s) / 1000000 ))" | tee -a $OUT/lazy-$name.txt
  grep -E '^(outside training|startup_seconds|tokens_per_sec|training_seconds|val_bpb)' $OUT/lazy-$name.txt
}
cold() { find $W/data/nanogpt/inductor -mindepth 1 -maxdepth 1 ! -name python-bytecode -exec rm -rf {} +; rm -rf $W/data/nanogpt/triton; }
run 0-fullycold-A train.py
cold; run 1-A train.py
cold; run 2-N train_n.py
cold; run 3-N train_n.py
cold; run 4-A train.py
ls $W/data/nanogpt/inductor
