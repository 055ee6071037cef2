#!/bin/bash
# The nanogpt template with and without the sandbox, on GPU 0 of one machine:
#
#   bench/gpu/sandbox.sh CORPUS OUT
#
# Three runs of one trial each (the baseline, 60 s budget, greedy judge) on one task: the
# first fills the compile cache and runs setup, then one in bubblewrap and one without,
# both from the same warm cache. Each replicate first says which GPU it sees. Needs
# `autoresearch`, bwrap, git and a python3 with torch, numpy and regex on PATH.
set -uo pipefail
corpus=$1 out=$2
mkdir -p "$out"
task=$(mktemp -d)/task
autoresearch init --template nanogpt "$task" > /dev/null
cd "$task" || exit 1
sed -i 's/^budget: .*/budget: 60s/; s/^timeout: .*/timeout: 500s/; s/^judge: .*/judge: { policy: greedy }/' autoresearch.yaml
sed -i "s|^run: .*|run: python3 -c 'import torch; print(\"gpu:\", torch.cuda.get_device_name(0))'; python3 train.py|" autoresearch.yaml
printf 'env: { NANOGPT_TEXT: "%s" }\n' "$corpus" >> autoresearch.yaml
git -c user.name=bench -c user.email=bench@localhost commit -qam "60 s budget, the corpus, the GPU named"

for run in warm:none boxed:bwrap plain:none; do
  tag=${run%%:*} mode=${run##*:}
  start=$(date +%s%N)
  autoresearch run --gpus 0 --tag "$tag" --max-trials 1 --sandbox "$mode" > "$out/$tag.out" 2>&1
  echo "exit $? wall_ms $(( ($(date +%s%N) - start) / 1000000 ))" >> "$out/$tag.out"
  cp .autoresearch/runs/"$tag"/trials/0/run.log "$out/$tag.log" 2>/dev/null
  { echo "== $tag (--sandbox $mode)"; grep -E '^(sandbox|gpu):' "$out/$tag.out" "$out/$tag.log" | sed 's/^[^:]*://'
    sed -n '/^---$/,$p' "$out/$tag.log"; tail -1 "$out/$tag.out"; } >> "$out/summary.txt"
done
cat "$out/summary.txt"
