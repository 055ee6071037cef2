#!/bin/bash
# Call 2: pairs at a 60 s budget on english-mix (bench/gpu/overlap-pair.py, GPU 0): the
# first of a pair is told its turn has come (cold compile after its start) and trains
# while the second compiles ahead beside it; the second then trains alone. Every run has
# caches of its own. The data prepared in call 1 are reused when the machine is the same.
set -u
here=$(pwd); W=/tmp/w; mkdir -p $W/pairtask
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python3 -c "import torch; print(torch.__version__)"; nproc; date -u; } > $OUT/gpu.txt 2>&1
cat $OUT/gpu.txt
cp templates/nanogpt/*.py $W/pairtask/
s=$(date +%s)
(cd $W/pairtask && AR_CACHE_DIR=$W/data python3 prepare.py --text $here/.gpu8/english-mix.txt.xz > $OUT/prep.txt 2>&1) || { tail $OUT/prep.txt; exit 1; }
took=$(( $(date +%s) - s )); echo "prepare: $took s"; tail -2 $OUT/prep.txt
ln -sfn $W/data $W/pairtask/data
left=$(( 530 - took ))
AR_TIME_BUDGET=60 timeout $(( left + 20 )) python3 bench/gpu/overlap-pair.py $W/pairtask $left $W/pairs 0 > $OUT/pairs-terminal.txt 2>&1
echo "driver exit $?"
cp $W/pairs/pairs.json $OUT/ 2>/dev/null
cat $OUT/pairs-terminal.txt
for f in $W/pairs/*.txt; do echo "== $(basename $f)"; grep -E '^(outside|compiled ahead|note|val_bpb|training_seconds|startup_seconds|waited_seconds|tokens_per_sec|num_steps|device_batch|Traceback|[A-Za-z._]*Error)' $f; done | tee $OUT/pairs-lines.txt
tar -czf $OUT/logs.tgz -C $W/pairs .
