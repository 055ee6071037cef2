#!/bin/bash
# Call 1: the share of held GPU time in timed training at a 300 s budget, for a trial that
# compiles ahead (.gpu8/share300.py). english-mix prepared first (kept in /tmp/w for call 2).
# The neighbour: the template as it is, 60 s, told its turn has come (cold compile after
# its start). The trial: VE_GATE_CHANNELS 32 -> 16 (a constant the graph holds), 300 s,
# gated, compiling ahead beside the neighbour; its turn at the neighbour's exit.
set -u
here=$(pwd); W=/tmp/w; mkdir -p $W/base $W/ve16
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python3 -c "import torch; print(torch.__version__)"; nproc; date -u; } > $OUT/gpu.txt 2>&1
cat $OUT/gpu.txt
cp templates/nanogpt/*.py $W/base/
cp templates/nanogpt/*.py $W/ve16/
sed -i 's/^VE_GATE_CHANNELS = 32 /VE_GATE_CHANNELS = 16 /' $W/ve16/train.py
grep -n '^VE_GATE_CHANNELS' $W/base/train.py $W/ve16/train.py
s=$(date +%s)
(cd $W/base && AR_CACHE_DIR=$W/data python3 prepare.py --text $here/.gpu8/english-mix.txt.xz > $OUT/prep.txt 2>&1) || { tail $OUT/prep.txt; exit 1; }
echo "prepare: $(( $(date +%s) - s )) s"; tail -2 $OUT/prep.txt
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv -lms 1000 > $OUT/smi.csv 2>&1 &
smi=$!
timeout 500 python3 $here/.gpu8/share300.py $W/base $W/ve16 $W/data $OUT > $OUT/terminal.txt 2>&1
echo "driver exit $?"
kill $smi
cat $OUT/terminal.txt | grep -v '^   "' 
for f in $OUT/neighbour.txt $OUT/trial.txt; do echo "== $f"; grep -E '^(outside|compiled ahead|note|val_bpb|training_seconds|startup_seconds|waited_seconds|tokens_per_sec|num_steps|device_batch|Traceback|[A-Za-z._]*Error)' $f; done
