import { readdirSync, rmSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { WorkspaceError } from "../errors.js";
import type { Executor } from "../executors/executor.js";
import type { Ledger } from "../ledger/ledger.js";
import type { RunRow } from "../ledger/types.js";
import type { Task } from "../task/task.js";
import { endGroup, isAlive } from "../util/proc.js";
import { git } from "../workspace/git.js";
import { branchRef, resolveRef, setRef } from "../workspace/repo.js";
import { removeWorktree } from "../workspace/worktree.js";
import { paths } from "./paths.js";
import { writeResults } from "./results.js";
import type { TrialJob } from "./trial.js";

export interface Recovery {
  /** Trials that were in flight and are now recorded as interrupted. */
  interrupted: number;
  /** Orphaned replicate process groups that were ended. */
  killed: number;
  branchMoved: boolean;
  /** Trials whose cluster job outlived the orchestrator: they are followed to their end. */
  reattached: TrialJob[];
}

/** Refuses to drive a run that another live orchestrator process owns. */
export function checkOwner(run: RunRow): void {
  if (run.ownerPid && run.ownerPid !== process.pid && isAlive(run.ownerPid, run.ownerStart))
    throw new WorkspaceError(
      `run "${run.tag}" is being driven by process ${run.ownerPid}; stop it (Ctrl-C or kill ${run.ownerPid}) before resuming`,
    );
}

/**
 * Brings a run back to a consistent state after its orchestrator stopped, however it
 * stopped: orphaned replicates are ended, trials in flight are recorded as interrupted
 * (their finished replicates stay in the ledger), the branch is set to the ledger's
 * incumbent, leftover worktrees and stale ref locks are removed, results.tsv is rewritten.
 */
export async function recover(
  task: Task,
  ledger: Ledger,
  run: RunRow,
  executor?: Executor,
): Promise<Recovery> {
  let killed = 0;
  const reattached: TrialJob[] = [];
  const following = new Set<number>();
  for (const replicate of ledger.runningReplicates(run.id)) {
    const trial = ledger.trialById(replicate.trialId)!;
    if (replicate.jobId && executor?.attach && trial.commit) {
      // A cluster job does not die with the orchestrator: follow it rather than lose it.
      reattached.push({ kind: "reattach", trial, attach: { replicate, jobId: replicate.jobId } });
      following.add(trial.id);
      continue;
    }
    if (replicate.pid && isAlive(replicate.pid, replicate.pidStart)) {
      await endGroup(replicate.pid, task.killGrace * 1000);
      killed++;
    }
    ledger.finishReplicate(replicate.id, {
      outcome: "interrupted",
      reason: "the orchestrator stopped while it ran",
      exitCode: null,
      signal: null,
      metric: null,
      metrics: {},
      logBytes: null,
      logTail: null,
      durationMs: Date.now() - replicate.startedAt,
    });
  }
  let interrupted = 0;
  for (const trial of ledger.trials(run.id)) {
    if (trial.state === "done" || following.has(trial.id)) continue;
    ledger.finishTrial(trial.id, {
      verdict: "interrupted",
      reason: "the orchestrator stopped before the trial finished",
      metric: null,
      incumbentMetric: null,
      metrics: {},
      runMs: null,
    });
    interrupted++;
  }
  await removeStaleLocks(task.root, run.tag);
  const expected = ledger.incumbent(run.id)?.commit ?? run.baseCommit;
  const current = await resolveRef(task.root, branchRef(run.tag));
  if (current !== expected) await setRef(task.root, branchRef(run.tag), expected);
  const keep = new Set(reattached.map((j) => (j.kind === "reattach" ? j.trial.n : -1)));
  await removeLeftoverWorktrees(task.root, run.tag, keep);
  writeResults(task, ledger, run);
  if (interrupted || killed || current !== expected)
    ledger.event(run.id, null, "recovered", {
      interrupted,
      killed,
      branchMoved: current !== expected,
    });
  return { interrupted, killed, branchMoved: current !== expected, reattached };
}

async function removeLeftoverWorktrees(
  root: string,
  tag: string,
  keep: Set<number>,
): Promise<void> {
  const dir = paths.worktrees(root);
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(`${tag}-`) && !keep.has(Number(name.slice(tag.length + 1))))
      await removeWorktree(root, join(dir, name));
  }
  await git(root, ["worktree", "prune"]);
}

/** Ref locks of this run left by a kill in the middle of an update; nobody else writes them. */
async function removeStaleLocks(root: string, tag: string): Promise<void> {
  const common = await git(root, ["rev-parse", "--git-common-dir"]);
  const gitDir = isAbsolute(common) ? common : join(root, common);
  rmSync(join(gitDir, "refs", "heads", "autoresearch", `${tag}.lock`), { force: true });
  const trials = join(gitDir, "refs", "autoresearch", tag, "trials");
  let names: string[] = [];
  try {
    names = readdirSync(trials);
  } catch {
    return;
  }
  for (const name of names) if (name.endsWith(".lock")) rmSync(join(trials, name), { force: true });
}
