#!/bin/bash
# Two hosts of one swarm on one machine with two GPUs: one PostgreSQL, one `git daemon`
# remote, the nanogpt template with a short budget and the greedy judge, each host a clone
# of its own driving one GPU, for SECONDS; then the swarm's records are written to OUT.
#
#   bench/gpu/swarm.sh CORPUS SECONDS OUT
#
# Needs `autoresearch`, git, python3 with torch 2.x, numpy and regex, and PostgreSQL's
# initdb, pg_ctl and psql on PATH (run as root: the server runs as user `pgswarm`).
# GPUS="0 0" puts both hosts on GPU 0 of a one-GPU machine; TEMPLATE=demo CPU=1 tries the
# same on a machine without GPUs.
set -euo pipefail
corpus=$1 seconds=$2 out=$3
mkdir -p "$out"
work=/tmp/swarm-bench
# A server or daemon an earlier try left running holds the ports.
pkill -u pgswarm postgres 2>/dev/null && sleep 2 || true
pkill -f "git daemon .*--port=59418" 2>/dev/null || true
rm -rf "$work" && mkdir -p "$work"

# The database: a throwaway cluster owned by an unprivileged user, on loopback.
id pgswarm >/dev/null 2>&1 || useradd -M -d "$work" pgswarm
install -d -o pgswarm "$work/pg"
echo admin-pw > "$work/pg/pw" && chown pgswarm "$work/pg/pw"
runuser -u pgswarm -- initdb -D "$work/pg/data" -U postgres -A scram-sha-256 --pwfile="$work/pg/pw" >/dev/null
runuser -u pgswarm -- pg_ctl -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p 55432 -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
autoresearch swarm setup-sql --host gpu0 --host gpu1 > "$work/setup.sql"
PGPASSWORD=admin-pw psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 55432 -U postgres -d postgres \
  -v owner_password=owner-pw -v host1_password=gpu0-pw -v host2_password=gpu1-pw -f "$work/setup.sql"
db=postgres://swarm_owner@127.0.0.1:55432/autoresearch_swarm

# The remote.
mkdir -p "$work/remote" && git init -q --bare "$work/remote/task.git"
git daemon --reuseaddr --export-all --enable=receive-pack --base-path="$work/remote" \
  --listen=127.0.0.1 --port=59418 &
daemon=$!
sleep 1
remote=git://127.0.0.1:59418/task.git

# The task: a short budget and the greedy judge, so that a few minutes hold several trials.
autoresearch init --template "${TEMPLATE:-nanogpt}" "$work/origin" >/dev/null
cd "$work/origin"
sed -i 's/^budget: .*/budget: 30s/; s/^timeout: .*/timeout: 300s/; s/^judge: .*/judge: { policy: greedy }/' autoresearch.yaml
git -c user.name=bench -c user.email=bench@localhost commit -qam "30 s budget, greedy judge"
PGPASSWORD=owner-pw autoresearch swarm init --database "$db" --remote "$remote" --hosts-role swarm_hosts | tee "$out/init.txt"

nvidia-smi --query-gpu=timestamp,index,utilization.gpu,memory.used --format=csv,noheader -l 2 > "$out/smi.csv" 2>/dev/null &
smi=$!
hosts=()
gpus=(${GPUS:-0 1})
for i in 0 1; do
  git clone -q -b autoresearch-swarm "$remote" "$work/gpu$i"
  (cd "$work/gpu$i" && NANOGPT_TEXT="$corpus" PGPASSWORD="gpu$i-pw" timeout -s INT "$seconds" \
    autoresearch run --swarm "postgres://gpu$i@127.0.0.1:55432/autoresearch_swarm" \
    $([ -n "${CPU:-}" ] && echo --slots 1 || echo --gpus "${gpus[$i]}") --tag h200 --sandbox none \
    > "$out/host$i.log" 2>&1 || true) &
  hosts+=($!)
done
wait "${hosts[@]}" || true
sleep 2
kill $smi || true

PGPASSWORD=owner-pw autoresearch swarm status --database "$db" > "$out/status.txt" 2>&1 || true
PGPASSWORD=owner-pw autoresearch swarm doctor --database "$db" > "$out/doctor.txt" 2>&1 || true
for i in 0 1; do
  (cd "$work/gpu$i" && autoresearch doctor >> "$out/doctor.txt" 2>&1 || true)
done
PGPASSWORD=owner-pw psql -X -q -h 127.0.0.1 -p 55432 -U swarm_owner -d autoresearch_swarm -c \
  "\\copy (SELECT id, host, uid, title, verdict, baseline, metric, metrics->>'tokens_per_sec' AS tokens_per_sec,
    hardware_class, parent_commit, commit_sha, run_ms, finished_at, recorded_at FROM swarm.trials ORDER BY id)
    TO '$out/trials.csv' CSV HEADER"
PGPASSWORD=owner-pw psql -X -q -h 127.0.0.1 -p 55432 -U swarm_owner -d autoresearch_swarm -c \
  "\\copy (SELECT * FROM swarm.incumbents) TO '$out/incumbents.csv' CSV HEADER"
for i in 0 1; do
  cp "$work/gpu$i/.autoresearch/runs/h200/results.tsv" "$out/results$i.tsv" || true
  for f in "$work/gpu$i"/.autoresearch/runs/h200/trials/*/run*.log; do
    { echo "== $f"; grep -E '^outside training' "$f" || true; sed -n '/^---$/,$p' "$f"; } >> "$out/replicates$i.txt"
  done
done
kill $daemon || true
runuser -u pgswarm -- pg_ctl -D "$work/pg/data" -m fast stop >/dev/null || true
