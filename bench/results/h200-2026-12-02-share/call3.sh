#!/bin/bash
set -u
for i in $(seq 1 110); do [ -e /tmp/r300/done ] && break; sleep 5; done
ls /tmp/r300; cp /tmp/r300/* $OUT/ 2>/dev/null; cp /tmp/r300-driver.log $OUT/
cat /tmp/r300/summary.json
grep -E "^(outside|startup_seconds|training_seconds|val_bpb)" /tmp/r300/pair-on-replicates.txt
