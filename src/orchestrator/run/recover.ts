import { readdirSync, rmSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { WorkspaceError } from "../../errors.js";
import type { Executor } from "../../executors/executor.js";
import { capLog, readLog } from "../../executors/log-file.js";
import { settleWriter } from "../../executors/process.js";
import type { Ledger } from "../../ledger/ledger.js";
import { promotions } from "../../ledger/promotions.js";
import {
  ADOPTER,
  importedFrom,
  type ReplicateRow,
  type RunRow,
  TRY_RESEARCHER,
  type TrialRow,
} from "../../ledger/types.js";
import { classify, logTail } from "../../metrics/outcome.js";
import type { Task } from "../../task/task.js";
import { endGroup, endMarked, isAlive, markOf } from "../../util/proc.js";
import {
  describePlanted,
  isPlanted,
  isRefusal,
  type Refusal,
  removePlanted,
  replaceWith,
  statRegular,
} from "../../util/safe-file.js";
import { git } from "../../workspace/git.js";
import { paths, replicateJob } from "../../workspace/layout.js";
import { branchRef, resolveRef, setRef } from "../../workspace/repo.js";
import { removeWorktree } from "../../workspace/worktree.js";
import { plantedLogReason } from "../trial/replicate.js";
import { writeResults } from "../trial/results.js";
import type { TrialJob } from "../trial/trial.js";
import { type Mended, mendCheckout } from "./checkout.js";

export interface Recovery {
  /** Trials recorded as interrupted: their proposal was not complete. */
  interrupted: number;
  /** Orphaned replicate process groups that were ended. */
  killed: number;
  /** Replicates that had finished unrecorded: their results were read back from their logs. */
  recovered: number;
  /** Trials ended as tampered: a replicate put a link or a special file in place of its log. */
  tampered: number;
  /** Trials that go on where they stopped (their cluster job followed, or replicates run again). */
  continued: TrialJob[];
  branchMoved: boolean;
  /** The task's checkout, on the run's branch, that a stop left behind its keeps: brought along, or left (edits in the way). */
  checkout: Mended | null;
}

/** Refuses to drive a run that another live orchestrator process owns. */
export function checkOwner(run: RunRow, doing = "resuming"): void {
  if (run.ownerPid && run.ownerPid !== process.pid && isAlive(run.ownerPid, run.ownerStart))
    throw new WorkspaceError(
      `run "${run.tag}" is being driven by process ${run.ownerPid}; stop it (Ctrl-C or kill ${run.ownerPid}) before ${doing}`,
    );
}

/**
 * Brings a run back to a consistent state after its orchestrator stopped, however it
 * stopped. A replicate whose process is still running is ended, with whatever carries its
 * mark (a cluster job is followed instead); one that had finished is read back from its
 * log. Trials that had their commit continue where they stopped (with `continueTrials`);
 * the others are recorded as interrupted. The branch is set to the ledger's incumbent (a
 * checkout on it left behind is brought along), leftover worktrees and stale ref locks are
 * removed, results.tsv is rewritten.
 */
export async function recover(
  task: Task,
  ledger: Ledger,
  run: RunRow,
  options: { executor?: Executor; continueTrials?: boolean } = {},
): Promise<Recovery> {
  if (importedFrom(run))
    return {
      interrupted: 0,
      killed: 0,
      recovered: 0,
      tampered: 0,
      continued: [],
      branchMoved: false,
      checkout: null,
    };
  let killed = 0;
  let recovered = 0;
  let tampered = 0;
  const continued = new Map<number, TrialJob>();
  const executor = options.executor;
  for (const replicate of ledger.runningReplicates(run.id)) {
    const trial = ledger.trialById(replicate.trialId)!;
    // A job submitted just before the kill may not have its id recorded: found by name.
    const jobId =
      replicate.jobId ??
      (await executor?.findJob?.(
        replicateJob(run.tag, trial.n, replicate.idx),
        replicate.logPath,
      )) ??
      null;
    if (jobId && executor?.attach && trial.commit && options.continueTrials) {
      // A cluster job does not die with the orchestrator: follow it rather than lose it.
      continued.set(trial.id, { kind: "continue", trial, attach: { replicate, jobId } });
      continue;
    }
    let ended = false;
    if (jobId && executor?.cancel && (await executor.alive?.(jobId))) {
      await executor.cancel(jobId);
      ended = true;
    }
    if (replicate.pid && isAlive(replicate.pid, replicate.pidStart)) {
      await endGroup(replicate.pid, task.killGrace * 1000);
      ended = true;
    }
    // What carries its mark: children that left its group, and the whole replicate when
    // the kill came after it started but before its pid was recorded.
    if ((await endMarked(markOf(replicate.logPath), task.killGrace * 1000)) > 0) ended = true;
    if (ended) killed++;
    await settleWriter(replicate.logPath, task.killGrace * 1000);
    // Unwatched, the replicate may have put a link where its log was: nothing goes through it.
    const log = statRegular(replicate.logPath);
    if (log !== null && isRefusal(log) && isPlanted(log)) {
      if (recordPlanted(ledger, replicate, log)) tampered++;
      continued.delete(trial.id);
      continue;
    }
    // One just ended may have printed its result already, on its way out; that is only
    // certain with the summary parser (a block printed once, at the end): the others take
    // the last match, which mid-training may be a progress line.
    // With overlap, a local replicate whose turn had not come waited beside another: what
    // it printed since (the orchestrator gone) was not measured on a slot of its own.
    const waiting = task.overlap && !jobId && replicate.runningAt === null;
    if (
      !waiting &&
      (!ended || task.metric.parser === "summary") &&
      readBack(task, ledger, replicate)
    ) {
      recovered++;
      continue;
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
      // Until its last output, not until now: the time the orchestrator was down is no
      // GPU time (the budget counts it); one that waited for its turn held no slot.
      durationMs: waiting ? 0 : lastOutput(replicate),
    });
  }
  let interrupted = 0;
  for (const trial of ledger.trials(run.id)) {
    if (continued.has(trial.id)) continue;
    // A trial a stop interrupted (Ctrl-C, a failure of the machine) runs again on resume;
    // not one of `try`'s, which the person runs again with `try`, as it said.
    if (trial.state === "done") {
      if (
        options.continueTrials &&
        trial.verdict === "interrupted" &&
        trial.commit &&
        trial.researcher !== TRY_RESEARCHER &&
        judgeable(ledger, run, trial)
      ) {
        ledger.reopenTrial(trial.id);
        continued.set(trial.id, { kind: "continue", trial: ledger.trialById(trial.id)! });
      }
      continue;
    }
    if (
      options.continueTrials &&
      trial.state === "running" &&
      trial.commit &&
      trial.researcher !== TRY_RESEARCHER
    ) {
      continued.set(trial.id, { kind: "continue", trial });
      continue;
    }
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
  // A promotion the orchestrator was running when it stopped is not running any more.
  for (const p of promotions.list(ledger, run.id))
    if (p.state === "running")
      promotions.finish(
        ledger,
        p.id,
        "failed",
        "the orchestrator stopped before it finished",
        null,
      );
  await removeStaleLocks(task.root, run.tag);
  const expected = ledger.incumbent(run.id)?.commit ?? run.baseCommit;
  const current = await resolveRef(task.root, branchRef(run.tag));
  if (current && current !== expected) await checkOwnCommits(task.root, ledger, run, current);
  if (current !== expected) await setRef(task.root, branchRef(run.tag), expected);
  // A checkout on the branch that the stop left behind its keeps: unless the person's edits
  // are in the way (doctor then says what to do), it follows now.
  const checkout = await mendCheckout(task.root, run.tag);
  // A followed cluster job still runs in its worktree; every other one goes.
  const busy = new Set(
    [...continued.values()].flatMap((j) => (j.kind === "continue" && j.attach ? [j.trial.n] : [])),
  );
  await removeLeftoverWorktrees(task.root, run.tag, busy);
  writeResults(task, ledger, run);
  const recovery = {
    interrupted,
    killed,
    recovered,
    tampered,
    continued: [...continued.values()],
    branchMoved: current !== expected,
    checkout,
  };
  const changed = recovery.branchMoved || checkout?.state === "followed";
  if (interrupted || killed || recovered || tampered || continued.size || changed)
    ledger.event(run.id, null, "recovered", {
      ...recovery,
      continued: continued.size,
      checkout: checkout?.state ?? null,
    });
  return recovery;
}

/**
 * Whether a trial can still be judged: its parent is kept, or is the base commit whose
 * baseline is still to run. Not one begun beside a baseline that failed, whose run then
 * started again from a new commit.
 */
function judgeable(ledger: Ledger, run: RunRow, trial: TrialRow): boolean {
  return (
    trial.baseline ||
    trial.researcher === ADOPTER ||
    trial.parentCommit === run.baseCommit ||
    ledger.keptAt(run.id, trial.parentCommit) !== null
  );
}

/**
 * A replicate whose process ended while no orchestrator watched: if its log holds the
 * metric, the result is recorded as it would have been. Returns false when there is none.
 */
function readBack(task: Task, ledger: Ledger, replicate: ReplicateRow): boolean {
  // Unwatched, the process wrote as much as it liked.
  const capped = capLog(replicate.logPath, task.logLimit);
  const read = readLog(replicate.logPath, task.logLimit);
  if (read === null || isRefusal(read)) return false;
  const assumed = {
    pid: replicate.pid,
    exitCode: 0,
    signal: null,
    timedOut: false,
    aborted: false,
    durationMs: 0,
    logBytes: capped.bytes,
    truncated: capped.truncated,
    spawnError: null,
  };
  const result = classify(assumed, read.text, task);
  if (result.outcome !== "ok" && result.outcome !== "constraint") return false;
  ledger.finishReplicate(replicate.id, {
    ...result,
    reason: result.reason ?? "read back from its log after the orchestrator stopped",
    exitCode: null,
    signal: null,
    logBytes: capped.bytes,
    logTail: logTail(read.text),
    durationMs: Math.round(read.mtimeMs - (replicate.runningAt ?? replicate.startedAt)),
    endedAt: read.mtimeMs,
  });
  return true;
}

/**
 * A replicate that put a link or a special file in place of its log while no orchestrator
 * watched: nothing is read through it. The log becomes a note saying so (what reads it
 * later does not go through it either), whatever else it planted in the trial's folder
 * is removed, and its trial ends as tampered. Returns whether the trial was ended here.
 */
function recordPlanted(ledger: Ledger, replicate: ReplicateRow, refusal: Refusal): boolean {
  const reason = plantedLogReason(refusal);
  replaceWith(replicate.logPath, `[autoresearch] ${reason}\n`);
  const others = removePlanted(dirname(replicate.logPath));
  const also = others.length ? `; it also left ${others.map(describePlanted).join(", ")}` : "";
  ledger.finishReplicate(replicate.id, {
    outcome: "no_metric",
    reason,
    exitCode: null,
    signal: null,
    metric: null,
    metrics: {},
    logBytes: null,
    logTail: null,
    durationMs: 0,
  });
  const trial = ledger.trialById(replicate.trialId);
  if (!trial || trial.state === "done") return false;
  ledger.finishTrial(trial.id, {
    verdict: "tampered",
    reason: reason + also,
    metric: null,
    incumbentMetric: null,
    metrics: {},
    runMs: null,
  });
  return true;
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
    const n = ownWorktree(tag, name);
    if (n !== null && !keep.has(n)) await removeWorktree(root, join(dir, name));
  }
  await git(root, ["worktree", "prune"]);
}

/**
 * The branch is moved back to the incumbent only when that loses nothing: it is behind
 * it, or at a commit of the run's own trials. A person's commits on it (`try` checks the
 * branch out, so people commit there) are refused with how to keep them.
 */
async function checkOwnCommits(root: string, ledger: Ledger, run: RunRow, current: string) {
  const behind = await git(root, [
    "merge-base",
    "--is-ancestor",
    current,
    ledger.incumbent(run.id)?.commit ?? run.baseCommit,
  ])
    .then(() => true)
    .catch(() => false);
  if (behind || ledger.trials(run.id).some((t) => t.commit === current)) return;
  const incumbent = (ledger.incumbent(run.id)?.commit ?? run.baseCommit).slice(0, 7);
  throw new WorkspaceError(
    `branch ${run.branch} has commits the run did not make (it is at ${current.slice(0, 7)}, the incumbent ${incumbent} is elsewhere); keep them on a branch of your own and put the run's branch back on its incumbent (git branch my-work ${run.branch} && git checkout -q my-work && git branch -f ${run.branch} ${incumbent}), then run this again`,
  );
}

/**
 * The trial number of one of this run's worktrees (`<tag>-<n>`, or `<tag>-<n>-<word>…`
 * for promotions and noise), or null: the run `exp` must not take `exp-2-1` of run `exp-2`.
 */
export function ownWorktree(tag: string, name: string): number | null {
  if (!name.startsWith(`${tag}-`)) return null;
  const match = /^(\d+)(-[a-z][\w-]*)?$/.exec(name.slice(tag.length + 1));
  return match ? Number(match[1]) : null;
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

/** Milliseconds from a replicate's start to its log's last write (0 without a readable log). */
function lastOutput(replicate: ReplicateRow): number {
  const log = statRegular(replicate.logPath);
  if (log === null || isRefusal(log)) return 0;
  return Math.max(0, Math.round(log.mtimeMs - (replicate.runningAt ?? replicate.startedAt)));
}
