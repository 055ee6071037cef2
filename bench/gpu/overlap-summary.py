"""Reads the ledgers of bench/gpu/overlap.sh's runs and prints, as JSON, what each run did
with its GPUs: trials finished per GPU-hour, the share of the GPUs' held time spent in timed
training, and each trial's figures; then the trials the two one-GPU runs share (same number,
same title, same parent, so the same code and seed), paired. "after_baseline" figures count
from the baseline's end, the part of a run that a longer run is made of.

    python3 overlap-summary.py WORK RUN...

A run's GPUs are held from its first replicate's start until it was stopped (WORK/RUN/stopped,
epoch milliseconds). Interrupted trials and replicates (cut by the stop) count as held time
but not as experiments or training."""

import json
import sqlite3
import sys


def summary(work, name):
    stopped = int(open(f"{work}/{name}/stopped").read())
    db = sqlite3.connect(f"{work}/{name}/.autoresearch/ledger.db")
    db.row_factory = sqlite3.Row
    rows = db.execute(
        """SELECT t.n, t.title, t.baseline, t.verdict, t.finished_at AS trial_end, t.commit_sha,
                  t.parent_commit, r.slot, r.outcome,
                  r.started_at, r.finished_at, r.duration_ms, r.metrics_json
           FROM trials t JOIN runs ON runs.id = t.run_id JOIN replicates r ON r.trial_id = t.id
           WHERE runs.tag = ? ORDER BY t.n, r.idx""",
        (name,),
    ).fetchall()
    slots = sorted({r["slot"] for r in rows if r["slot"]})
    first = min(r["started_at"] for r in rows)
    held = len(slots) * (stopped - first) / 1000
    # A trial's parent as a trial number: the clones' commits differ, the numbers compare.
    numbers = {r["commit_sha"]: r["n"] for r in rows if r["commit_sha"]}
    trials, training = [], 0.0
    for r in rows:
        m = json.loads(r["metrics_json"] or "{}")
        done = r["outcome"] == "ok" and r["finished_at"] <= stopped
        if done:
            training += m.get("training_seconds", 0)
        trials.append(
            {
                "n": r["n"],
                "baseline": bool(r["baseline"]),
                "parent": None if r["baseline"] else numbers.get(r["parent_commit"]),
                "title": r["title"],
                "verdict": r["verdict"],
                "slot": r["slot"],
                "val_bpb": m.get("val_bpb"),
                "tokens_per_sec": m.get("tokens_per_sec"),
                "training_seconds": m.get("training_seconds"),
                "startup_seconds": m.get("startup_seconds"),
                "waited_seconds": m.get("waited_seconds"),
                "started_s": round((r["started_at"] - first) / 1000, 1),
                "ended_s": round((r["finished_at"] - first) / 1000, 1) if r["finished_at"] else None,
                "held_ms": r["duration_ms"],
            }
        )
    done = [t for t in trials if t["verdict"] not in (None, "interrupted") and t["ended_s"] is not None
            and t["ended_s"] * 1000 + first <= stopped]
    baseline_end = max((t["ended_s"] for t in trials if t["baseline"] and t["ended_s"]), default=None)
    after = [t for t in done if not t["baseline"]]
    after_held = len(slots) * ((stopped - first) / 1000 - (baseline_end or 0))
    after_training = sum(t["training_seconds"] or 0 for t in after)
    return {
        "run": name,
        "gpus": len(slots),
        "held_gpu_seconds": round(held, 1),
        "experiments": len(done),
        "experiments_per_gpu_hour": round(len(done) / (held / 3600), 2),
        "after_baseline_per_gpu_hour": round(len(after) / (after_held / 3600), 2) if after_held > 0 else None,
        "timed_training_seconds": round(training, 1),
        "share_in_timed_training": round(training / held, 3),
        "after_baseline_share": round(after_training / after_held, 3) if after_held > 0 else None,
        "trials": trials,
    }


work, names = sys.argv[1], sys.argv[2:]
runs = {n: summary(work, n) for n in names}
out = {"runs": list(runs.values())}
if "solo-off" in runs and "solo-on" in runs:
    off = {(t["n"], t["title"]): t for t in runs["solo-off"]["trials"]}
    pairs = []
    for t in runs["solo-on"]["trials"]:
        o = off.get((t["n"], t["title"]))
        # The same number and title on the same parent: the same code and seed.
        if o and o["parent"] == t["parent"] and o["val_bpb"] is not None and t["val_bpb"] is not None:
            pairs.append(
                {
                    "n": t["n"],
                    "title": t["title"],
                    "val_bpb_off": o["val_bpb"],
                    "val_bpb_on": t["val_bpb"],
                    "difference": round(t["val_bpb"] - o["val_bpb"], 6),
                    "tokens_per_sec_ratio": round(t["tokens_per_sec"] / o["tokens_per_sec"], 4),
                }
            )
    out["pairs"] = pairs
json.dump(out, sys.stdout, indent=1)
print()
