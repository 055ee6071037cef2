#!/bin/bash
# Device call 4: the template's prepare.py as it now is (torch's bytecode kept beside the
# compile cache): a fully cold start, then a cold compile with the bytecode kept, 10 s budget.
set -u
here=$(pwd); W=/tmp/w4; mkdir -p $W
cp templates/nanogpt/*.py $W/; cd $W
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python3 -c "import torch; print(torch.__version__)"; nproc; date -u; env | grep -E '^PYTHON'; } > $OUT/gpu.txt 2>&1
s=$(date +%s%N)
AR_CACHE_DIR=$W/data python3 prepare.py --text $here/.gpu6/austen.txt > $OUT/prep.txt 2>&1
echo "prepare_ms $(( ($(date +%s%N) - s) / 1000000 ))" >> $OUT/prep.txt
run() {
  local name=$1
  start=$(date +%s%N)
  env AR_TIME_BUDGET=10 AR_SEED=42 AR_CACHE_DIR="$W/data" PYTHONUNBUFFERED=1 \
    TORCHINDUCTOR_CACHE_DIR="$W/c/inductor" TRITON_CACHE_DIR="$W/c/triton" \
    timeout 100 python3 train.py > "$OUT/$name.txt" 2>&1
  echo "wall_ms $(( ($(date +%s%N) - start) / 1000000 ))" >> "$OUT/$name.txt"
  echo "== $name"; grep -E '^(outside|val_bpb|startup_seconds|tokens_per_sec|num_steps|wall_ms|Traceback|[A-Za-z]*Error)' "$OUT/$name.txt"
}
run cold
echo "pyc kept: $(find $W/c/inductor/python-bytecode -name '*.pyc' 2>/dev/null | wc -l)" | tee $OUT/pyc.txt
# The compiled graphs and kernels go; the bytecode stays.
find $W/c/inductor -mindepth 1 -maxdepth 1 ! -name python-bytecode -exec rm -rf {} +; rm -rf $W/c/triton
run cold-compile-bytecode-kept
run warm
