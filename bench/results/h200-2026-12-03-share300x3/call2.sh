#!/bin/bash
# Device call B: waits for call A's run and keeps its records in one archive.
set -u
. .gpu8/setup.sh
FINAL=$OUT; OUT=/tmp/out3; rm -rf $OUT; mkdir -p $OUT
trap 'tar -czf $FINAL/call3.tgz -C $OUT .; ls -la $FINAL' EXIT
for i in $(seq 1 114); do [ -e /tmp/r300/done ] && break; sleep 5; done
date -u; ls /tmp/r300
mkdir -p $OUT/r300; cp /tmp/r300/summary.json /tmp/r300/*.log /tmp/r300/*.txt /tmp/r300/smi.csv $OUT/r300/ 2>/dev/null; cp /tmp/r300-driver.log $OUT/r300/
cat /tmp/r300/summary.json
grep -E "^(== |outside|compiled ahead|note: comp|startup_seconds|training_seconds|val_bpb)" /tmp/r300/pair-on-replicates.txt
