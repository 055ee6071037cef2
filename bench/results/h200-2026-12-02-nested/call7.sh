#!/bin/bash
# Device call 7: cold compiles with torch's bytecode kept, the template as it is (A) against
# the same with each block's forward marked as a nested compile region (N: traced and
# compiled once per kind of block, stamped out for the others), 15 s budget, austen.txt.
set -u
here=$(pwd); W=/tmp/w7; mkdir -p $W/a $W/n
cp templates/nanogpt/*.py $W/a/; cp templates/nanogpt/*.py $W/n/
python3 - "$W/n/train.py" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
head = "class Block(nn.Module):"
i = s.index(head)
j = s.index("    def forward(self, x, ve, rotary):", i)
s = s[:j] + "    @torch.compiler.nested_compile_region\n" + s[j:]
open(p, "w").write(s)
PY
grep -n -A1 "nested_compile_region" $W/n/train.py > $OUT/variant.txt
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python3 -c "import torch; print(torch.__version__)"; nproc; date -u; } > $OUT/gpu.txt 2>&1
(cd $W/a && AR_CACHE_DIR=$W/data python3 prepare.py --text $here/.gpu8/austen.txt > $OUT/prep.txt 2>&1)
run() {
  local v=$1 name=$2
  start=$(date +%s%N)
  (cd $W/$v && env AR_TIME_BUDGET=15 AR_SEED=42 AR_CACHE_DIR="$W/data" PYTHONUNBUFFERED=1 \
    TORCHINDUCTOR_CACHE_DIR="$W/c$v/inductor" TRITON_CACHE_DIR="$W/c$v/triton" \
    timeout 150 python3 train.py > "$W/log-$v-$name.txt" 2>&1)
  echo "wall_ms $(( ($(date +%s%N) - start) / 1000000 ))" >> "$W/log-$v-$name.txt"
  echo "== $v $name"; grep -E '^(outside|val_bpb|startup_seconds|tokens_per_sec|num_steps|wall_ms|Traceback|[A-Za-z.]*Error)' "$W/log-$v-$name.txt"
}
cold() { find $W/c$1/inductor -mindepth 1 -maxdepth 1 ! -name python-bytecode -exec rm -rf {} +; rm -rf $W/c$1/triton; }
run a fully-cold
mkdir -p $W/cn/inductor && cp -r $W/ca/inductor/python-bytecode $W/cn/inductor/
for i in 1 2; do
  cold n; run n cold$i
  cold a; run a cold$i
done
run a warm; run n warm
tar -czf $OUT/logs.tgz -C $W $(cd $W && ls log-*.txt)
