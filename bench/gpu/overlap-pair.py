#!/usr/bin/env python3
"""Does a neighbour's start move the metric of the replicate that trains? Paired runs of
the nanogpt template on each GPU at once, driven here without the harness:

  python3 bench/gpu/overlap-pair.py TASK SECONDS OUT [GPU ...]

TASK holds train.py and prepare.py, with data prepared under TASK/data (AR_CACHE_DIR).
Per GPU (default: 0), pairs of runs follow each other until SECONDS have passed. The
first run of a pair trains while the second starts beside it, as `overlap: true` places
them: the second does what train.py does before its gate (imports and model; since
2026-12-03 its step compiled without running; until 2026-12-01 the compiling first step
and the untimed steps), then waits there. The first is let through at once and told so
(AR_GATE_OPEN, as the harness does). Once the first has ended, the second trains alone.
Every run has compile caches of its own, so each
start is a cold compile (what a changed graph costs), and every run has the same code
and seed: the two groups differ only by the neighbour. AR_TIME_BUDGET sets the budget
(default 60). Writes OUT/pairs.json (every run, and the groups' means and spread) and
each run's log as OUT/NAME.txt.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

task, seconds, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
gpus = sys.argv[4:] or ["0"]
budget = float(os.environ.get("AR_TIME_BUDGET") or 60)
began = time.time()
deadline = began + seconds
runs = []
lock = threading.Lock()
os.makedirs(out, exist_ok=True)


class Run:
    """One train.py process, holding its end of the gate."""

    def __init__(self, gpu, name, open_turn=False):
        self.name = name
        self.gate, theirs = socket.socketpair()
        caches = os.path.join(task, "caches", name)
        env = {
            **os.environ,
            "CUDA_VISIBLE_DEVICES": gpu,
            "AR_GATE": str(theirs.fileno()),
            "AR_SEED": "42",
            "AR_TIME_BUDGET": str(budget),
            "AR_CACHE_DIR": os.path.join(task, "data"),
            "PYTHONUNBUFFERED": "1",
            "TORCHINDUCTOR_CACHE_DIR": os.path.join(caches, "inductor"),
            "TRITON_CACHE_DIR": os.path.join(caches, "triton"),
        }
        if open_turn:  # as the harness says it to one whose turn has come at its start
            env["AR_GATE_OPEN"] = "1"
        self.log = os.path.join(out, name + ".txt")
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "train.py"],
                cwd=task,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=[theirs.fileno()],
            )
        theirs.close()
        self.started = time.time()

    def ready(self):
        """Waits until the run asks for its turn; False when it ended first."""
        asked = self.gate.recv(1)
        self.ready_at = time.time()
        return bool(asked)

    def let_through(self):
        self.gate.send(b"g")
        self.gate.close()
        self.turn_at = time.time()

    def wait(self):
        self.process.wait()
        self.ended_at = time.time()

    def summary(self):
        result = {}
        with open(self.log) as log:
            for line in log:
                key, _, value = line.partition(":")
                try:
                    result[key] = float(value)
                except ValueError:
                    pass
        return result


def record(gpu, pair, role, run, **extra):
    s = run.summary()
    keys = ["val_bpb", "tokens_per_sec", "num_steps", "training_seconds", "startup_seconds"]
    row = {"gpu": gpu, "pair": pair, "role": role, "name": run.name, "exit": run.process.returncode}
    row.update({k: s.get(k) for k in keys + ["waited_seconds"]})
    row.update(extra)
    with lock:
        runs.append(row)
    print(json.dumps(row), flush=True)


def pairs_on(gpu):
    pair = 0
    # A pair: a cold start (under a minute on an H200), two budgets and two evaluations.
    while time.time() + 2 * budget + 45 < deadline:
        first = Run(gpu, f"gpu{gpu}-pair{pair}-first", open_turn=True)
        if not first.ready():
            first.wait()
            record(gpu, pair, "failed", first)
            return
        first.let_through()
        second = Run(gpu, f"gpu{gpu}-pair{pair}-second")
        prepared = second.ready()
        first.wait()
        # Seconds the neighbour's start took beside the training run; past the run's end,
        # part of it ran alone.
        ready_after = second.ready_at - first.turn_at if prepared else None
        record(gpu, pair, "with neighbour", first, neighbour_ready_after_s=ready_after)
        if prepared:
            second.let_through()
        second.wait()
        record(gpu, pair, "alone", second)
        pair += 1


threads = [threading.Thread(target=pairs_on, args=(g,)) for g in gpus]
for t in threads:
    t.start()
for t in threads:
    t.join()


def group(role):
    values = [r["val_bpb"] for r in runs if r["role"] == role and r["val_bpb"] is not None]
    rates = [r["tokens_per_sec"] for r in runs if r["role"] == role and r["tokens_per_sec"]]
    return {
        "n": len(values),
        "val_bpb_mean": statistics.mean(values) if values else None,
        "val_bpb_sd": statistics.stdev(values) if len(values) > 1 else None,
        "tokens_per_sec_mean": statistics.mean(rates) if rates else None,
    }


alone, beside = group("alone"), group("with neighbour")
result = {"budget_s": budget, "gpus": gpus, "alone": alone, "with_neighbour": beside, "runs": runs}
if alone["n"] and beside["n"]:
    result["difference"] = beside["val_bpb_mean"] - alone["val_bpb_mean"]
    result["tokens_per_sec_ratio"] = beside["tokens_per_sec_mean"] / alone["tokens_per_sec_mean"]
with open(os.path.join(out, "pairs.json"), "w") as f:
    json.dump(result, f, indent=1)
print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
