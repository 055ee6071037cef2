#!/bin/bash
# Device call 3: the template and harness as reviewed (the compile ahead with fullgraph,
# skipped when AR_GATE_OPEN says the turn has come, a memory rule). Two pairs at a 20 s
# budget (the first of each pair is let through at once and told so).
set -u
here=$(pwd); W=/tmp/w3; rm -rf $W; mkdir -p $W/task
cp templates/nanogpt/*.py $W/task/
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python3 -c "import torch; print(torch.__version__)"; nproc; date -u; } > $OUT/gpu.txt 2>&1
cat $OUT/gpu.txt
(cd $W/task && AR_CACHE_DIR=$W/task/data python3 prepare.py --text $here/.gpu8/austen.txt > $OUT/prep.txt 2>&1) || { tail $OUT/prep.txt; exit 1; }
AR_TIME_BUDGET=20 timeout 200 python3 bench/gpu/overlap-pair.py $W/task 175 $W/pairs 0 > $OUT/pairs-terminal.txt 2>&1
cp $W/pairs/pairs.json $OUT/ 2>/dev/null
for f in $W/pairs/*.txt; do echo "== $(basename $f)"; grep -E '^(outside|compiled ahead|note|startup_seconds|waited_seconds|tokens_per_sec|Traceback|[A-Za-z._]*Error)' $f; done | tee $OUT/pairs-lines.txt
