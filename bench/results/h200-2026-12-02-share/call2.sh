#!/bin/bash
# Device calls 2 and 3: the whole run's share at a 300 s budget, one GPU, overlap on, the
# baseline and one trial (MAX_TRIALS=2), a fresh clone. The run outlasts one call, so it
# runs in a session of its own from copies outside the tree; call 3 waits for it.
set -u
. .gpu8/setup.sh
S=/tmp/r300src; rm -rf /tmp/r300 $S; mkdir -p /tmp/r300 $S
cp bench/gpu/overlap.sh bench/gpu/overlap-summary.py .gpu8/austen.txt $S/
date -u > $OUT/started.txt
setsid nohup bash -c "PAIR_GPUS=0 MAX_TRIALS=2 bash $S/overlap.sh $S/austen.txt 300 0 800 /tmp/r300; touch /tmp/r300/done" > /tmp/r300-driver.log 2>&1 < /dev/null &
for i in $(seq 1 115); do [ -e /tmp/r300/done ] && break; sleep 5; done
cp /tmp/r300-driver.log $OUT/ 2>/dev/null; tail -5 /tmp/r300/pair-on.log
