import { join } from "node:path";
import { STATE_DIR } from "../workspace/repo.js";

/** Where a run's files live inside the task repository's state folder. */
export const paths = {
  state: (root: string) => join(root, STATE_DIR),
  cache: (root: string) => join(root, STATE_DIR, "cache"),
  run: (root: string, tag: string) => join(root, STATE_DIR, "runs", tag),
  results: (root: string, tag: string) => join(root, STATE_DIR, "runs", tag, "results.tsv"),
  trial: (root: string, tag: string, n: number) =>
    join(root, STATE_DIR, "runs", tag, "trials", String(n)),
  worktrees: (root: string) => join(root, STATE_DIR, "worktrees"),
  worktree: (root: string, tag: string, n: number) =>
    join(root, STATE_DIR, "worktrees", `${tag}-${n}`),
};

export const replicateLog = (idx: number) => (idx === 0 ? "run.log" : `run.${idx}.log`);
export const replicateResult = (idx: number) => (idx === 0 ? "result.json" : `result.${idx}.json`);
/** The name of a replicate's cluster job, by which a job whose id was never recorded is found. */
export const replicateJob = (tag: string, n: number, idx: number) => `ar-${tag}-${n}-${idx}`;
