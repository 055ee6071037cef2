#!/bin/bash
# Device call 2: waits for call 1's run and keeps its records; then a lone replicate's cold
# start under compile knobs (coldprobe.py): 10 s budget, austen.txt, no gate; one fully
# cold run first (it writes the bytecode), then A, pool, nopw, pool+nopw, A with the
# compiled graphs and kernels deleted before each (bytecode kept).
set -u
. .gpu8/setup.sh
FINAL=$OUT; OUT=/tmp/out2; rm -rf $OUT; mkdir -p $OUT
trap 'tar -czf $FINAL/call2.tgz -C $OUT .; ls -la $FINAL' EXIT
for i in $(seq 1 60); do [ -e /tmp/r300/done ] && break; sleep 5; done
date -u; ls /tmp/r300
mkdir -p $OUT/r300; cp /tmp/r300/summary.json /tmp/r300/*.log /tmp/r300/*.txt /tmp/r300/smi.csv $OUT/r300/ 2>/dev/null; cp /tmp/r300-driver.log $OUT/r300/
cat /tmp/r300/summary.json
grep -E "^(== |outside|compiled ahead|note: comp|startup_seconds|training_seconds|val_bpb)" /tmp/r300/pair-on-replicates.txt
W=/tmp/cold; rm -rf $W; mkdir -p $W; cp templates/nanogpt/*.py .gpu8/coldprobe.py $W/; cd $W
AR_CACHE_DIR=$W/data python3 prepare.py --text $OLDPWD/.gpu8/austen.txt > $OUT/cold-prepare.txt 2>&1 || { tail $OUT/cold-prepare.txt; exit 1; }
run() {
  local name=$1 probe=$2; s=$(date +%s%N)
  PROBE=$probe AR_TIME_BUDGET=10 AR_SEED=42 AR_CACHE_DIR=$W/data timeout 200 python3 coldprobe.py > $OUT/cold-$name.txt 2>&1
  echo "== $name rc $? wall_ms $(( ($(date +%s%N) - s) / 1000000 ))" | tee -a $OUT/cold-$name.txt
  grep -E '^(outside training|startup_seconds|tokens_per_sec|probe: (knobs|warm|wall))' $OUT/cold-$name.txt
}
cold() { find $W/data/nanogpt/inductor -mindepth 1 -maxdepth 1 ! -name python-bytecode -exec rm -rf {} +; rm -rf $W/data/nanogpt/triton; }
run 0-fullycold-A ""
cold; run 1-A ""
cold; run 2-pool pool
cold; run 3-nopw nopw
cold; run 4-pool-nopw pool,nopw
cold; run 5-A ""
ls $W/data/nanogpt/inductor
