#!/bin/bash
# Device call 1: the step compiled ahead, before the gate, while another replicate trains.
# Pairs of the template at a 60 s budget (bench/gpu/overlap-pair.py): the first of a pair
# trains while the second starts beside it and compiles ahead; the second then trains
# alone. Every run has caches of its own (each compile is cold), austen.txt.
set -u
here=$(pwd); W=/tmp/w1; rm -rf $W; mkdir -p $W/task
cp templates/nanogpt/*.py $W/task/
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python3 -c "import torch; print(torch.__version__)"; nproc; date -u; } > $OUT/gpu.txt 2>&1
cat $OUT/gpu.txt
(cd $W/task && AR_CACHE_DIR=$W/task/data python3 prepare.py --text $here/.gpu8/austen.txt > $OUT/prep.txt 2>&1) || { tail $OUT/prep.txt; exit 1; }
AR_TIME_BUDGET=60 timeout 560 python3 bench/gpu/overlap-pair.py $W/task 520 $W/pairs 0 > $OUT/pairs-terminal.txt 2>&1
cp $W/pairs/pairs.json $OUT/ 2>/dev/null
cat $OUT/pairs-terminal.txt
for f in $W/pairs/*.txt; do echo "== $(basename $f)"; grep -E '^(outside|compiled ahead|note|val_bpb|startup_seconds|waited_seconds|tokens_per_sec|num_steps|Traceback|[A-Za-z._]*Error)' $f; done
tar -czf $OUT/logs.tgz -C $W/pairs .
