import { join } from "node:path";

/** The task file at the root of a task repository. */
export const TASK_FILE = "autoresearch.yaml";

/** The harness's own folder in a task repository, ignored by git. */
export const STATE_DIR = ".autoresearch";

/** Where a run's files live inside the task repository's state folder. */
export const paths = {
  state: (root: string) => join(root, STATE_DIR),
  cache: (root: string) => join(root, STATE_DIR, "cache"),
  /**
   * Compile caches kept across trials, written by every replicate. Not in the cache: what
   * setup may write must never decide where a replicate's writable folders are.
   */
  compileCaches: (root: string) => ({
    inductor: join(root, STATE_DIR, "compile-cache", "torch-inductor"),
    triton: join(root, STATE_DIR, "compile-cache", "triton"),
  }),
  /** The harness's record of setups done, where setup itself cannot write. */
  setupMarks: (root: string) => join(root, STATE_DIR, "setup"),
  run: (root: string, tag: string) => join(root, STATE_DIR, "runs", tag),
  results: (root: string, tag: string) => join(root, STATE_DIR, "runs", tag, "results.tsv"),
  /** Where a checkout on the run's branch was when a session or `try` began to move the branch. */
  following: (root: string, tag: string) => join(root, STATE_DIR, "runs", tag, "checkout-from"),
  trial: (root: string, tag: string, n: number) =>
    join(root, STATE_DIR, "runs", tag, "trials", String(n)),
  worktrees: (root: string) => join(root, STATE_DIR, "worktrees"),
  worktree: (root: string, tag: string, n: number) =>
    join(root, STATE_DIR, "worktrees", `${tag}-${n}`),
};

/** The files of a trial's folder (`paths.trial`). */
export const TRIAL_FILES = {
  /** The first replicate's log; later ones are `replicateLog(idx)`. */
  log: "run.log",
  diff: "diff.patch",
  proposal: "proposal.json",
  metrics: "metrics.json",
} as const;

/** True for a name the harness writes in a trial's folder (metrics.json also through temporary files). */
export const isTrialFile = (name: string) =>
  /^(run(\.\d+)?\.log|result(\.\d+)?\.json|run(\.\d+)?\.sbatch|verify\.(log|json)|metrics\.json.*)$/.test(
    name,
  ) || Object.values(TRIAL_FILES).includes(name as never);

export const replicateLog = (idx: number) => (idx === 0 ? TRIAL_FILES.log : `run.${idx}.log`);
export const replicateResult = (idx: number) => (idx === 0 ? "result.json" : `result.${idx}.json`);
/** The name of a replicate's cluster job, by which a job whose id was never recorded is found. */
export const replicateJob = (tag: string, n: number, idx: number) => `ar-${tag}-${n}-${idx}`;
