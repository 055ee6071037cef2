#!/usr/bin/env python3
"""The share of held GPU time in timed training, for a trial that compiles ahead.

  python3 share300.py BASE_TASK CHANGED_TASK DATA OUT

Two train.py processes on GPU 0, started together, with the gate protocol of
bench/gpu/overlap-pair.py (a socket pair; the replicate writes 'r' when ready for the
GPU and reads one byte for its turn):
- the neighbour: BASE_TASK's train.py, a 60 s budget, told its turn has come
  (AR_GATE_OPEN=1), so it compiles cold after its start and trains at once;
- the trial: CHANGED_TASK's train.py (a constant the graph holds changed), a 300 s
  budget, gated: it compiles ahead while the neighbour trains; its turn is given at the
  neighbour's exit, as the harness gives it when the GPU is free.
Both use one compile cache (DATA/nanogpt/inductor, as the harness's task cache), cold.
Held time of the trial: from the neighbour's exit to its own exit.
Writes OUT/share.json and OUT/neighbour.txt, OUT/trial.txt (the logs).
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time

base, changed, data, out = sys.argv[1:5]
os.makedirs(out, exist_ok=True)
t0 = time.time()


def rel(t):
    return None if t is None else round(t - t0, 3)


class Run:
    def __init__(self, name, task, budget, open_turn):
        self.name = name
        self.gate, theirs = socket.socketpair()
        env = {
            **os.environ,
            "CUDA_VISIBLE_DEVICES": "0",
            "AR_GATE": str(theirs.fileno()),
            "AR_SEED": "42",
            "AR_TIME_BUDGET": str(budget),
            "AR_CACHE_DIR": data,
            "PYTHONUNBUFFERED": "1",
        }
        if open_turn:
            env["AR_GATE_OPEN"] = "1"
        self.log = os.path.join(out, name + ".txt")
        self.ready_at = self.turn_at = self.ended_at = None
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "train.py"], cwd=task, env=env,
                stdout=log, stderr=subprocess.STDOUT, pass_fds=[theirs.fileno()],
            )
        theirs.close()
        self.started = time.time()
        self.asked = threading.Thread(target=self._listen)
        self.asked.start()

    def _listen(self):
        if self.gate.recv(1):
            self.ready_at = time.time()

    def let_through(self):
        try:
            self.gate.send(b"g")
        except OSError:  # it ended before its turn
            pass
        self.turn_at = time.time()

    def wait(self):
        self.process.wait()
        self.ended_at = time.time()

    def summary(self):
        result = {"exit": self.process.returncode}
        with open(self.log) as log:
            for line in log:
                key, _, value = line.partition(":")
                key = key.strip()
                try:
                    result[key] = float(value)
                except ValueError:
                    if line.startswith(("outside training", "compiled ahead", "note")):
                        result.setdefault("lines", []).append(line.strip())
        for line in result.get("lines", []):
            if line.startswith("outside training: "):
                for part in line[len("outside training: "):].split(", "):
                    phase, _, seconds = part.rpartition(" ")
                    result["phase " + phase] = float(seconds.rstrip("s"))
        result.update(started=rel(self.started), ready=rel(self.ready_at),
                      turn=rel(self.turn_at), ended=rel(self.ended_at))
        return result


neighbour = Run("neighbour", base, 60, open_turn=True)
trial = Run("trial", changed, 300, open_turn=False)
neighbour.asked.join()  # it asks once its imports are done
neighbour.let_through()
neighbour.wait()
trial.let_through()  # the GPU is free: the turn waits in the socket if not yet asked for
trial.wait()
for run in (neighbour, trial):
    run.gate.close()

n, t = neighbour.summary(), trial.summary()
held = trial.ended_at - neighbour.ended_at
result = {
    "neighbour": n,
    "trial": t,
    "trial_ready_before_turn_s": (neighbour.ended_at - trial.ready_at) if trial.ready_at else None,
    "held_s": held,
    "timed_training_s": t.get("training_seconds"),
    "share": (t.get("training_seconds") or 0) / held,
    "turn_to_training_start_s": None,
}
# The trial's training began startup_seconds after its t_start, which train.py moves on by
# the wait; the phases after the turn are model, data, first step, untimed steps.
after = [t.get("phase " + p) for p in ("model", "data", "first step", "untimed steps")]
if all(a is not None for a in after):
    result["turn_to_training_start_s"] = sum(after)
with open(os.path.join(out, "share.json"), "w") as f:
    json.dump(result, f, indent=1)
print(json.dumps(result, indent=1))
