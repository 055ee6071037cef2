#!/bin/bash
# Device call 6: cold compiles with torch's bytecode kept, the template as it is (A) against
# the same with Inductor's per-kernel autotuning off (B: one launch configuration per
# pointwise and reduction kernel, none timed on the GPU), 15 s budget, austen.txt.
set -u
here=$(pwd); W=/tmp/w6; mkdir -p $W/a $W/b
cp templates/nanogpt/*.py $W/a/; cp templates/nanogpt/*.py $W/b/
# B: after `import torch.nn.functional as F`, autotuning off.
sed -i 's/^import torch.nn.functional as F$/import torch.nn.functional as F\nimport torch._inductor.config as _ic\n_ic.triton.autotune_pointwise = False/' $W/b/train.py
grep -n "_ic" $W/b/train.py > $OUT/variant.txt
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python3 -c "import torch; print(torch.__version__)"; nproc; date -u; env | grep -E '^PYTHON'; } > $OUT/gpu.txt 2>&1
(cd $W/a && AR_CACHE_DIR=$W/data python3 prepare.py --text $here/.gpu7/austen.txt > $OUT/prep.txt 2>&1)
run() {
  local v=$1 name=$2
  start=$(date +%s%N)
  (cd $W/$v && env AR_TIME_BUDGET=15 AR_SEED=42 AR_CACHE_DIR="$W/data" PYTHONUNBUFFERED=1 \
    TORCHINDUCTOR_CACHE_DIR="$W/c$v/inductor" TRITON_CACHE_DIR="$W/c$v/triton" \
    timeout 120 python3 train.py > "$OUT/$v-$name.txt" 2>&1)
  echo "wall_ms $(( ($(date +%s%N) - start) / 1000000 ))" >> "$OUT/$v-$name.txt"
  echo "== $v $name"; grep -E '^(outside|val_bpb|startup_seconds|tokens_per_sec|num_steps|wall_ms|Traceback|[A-Za-z]*Error)' "$OUT/$v-$name.txt"
}
# Graphs and kernels go; the bytecode stays.
cold() { find $W/c$1/inductor -mindepth 1 -maxdepth 1 ! -name python-bytecode -exec rm -rf {} +; rm -rf $W/c$1/triton; }
run a fully-cold
mkdir -p $W/cb/inductor && cp -r $W/ca/inductor/python-bytecode $W/cb/inductor/
echo "pyc kept: $(find $W/ca/inductor/python-bytecode -name '*.pyc' | wc -l)"
for i in 1 2; do
  cold a; run a cold$i
  cold b; run b cold$i
done
run a warm; run b warm
