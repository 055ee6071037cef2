import { rmSync } from "node:fs";
import type { Placement, ReplicateExecution, ReplicateSpec } from "../../executors/executor.js";
import { readLog } from "../../executors/log-file.js";
import { sandboxHint } from "../../executors/sandbox.js";
import { type Classified, classify, type Outcome } from "../../metrics/outcome.js";
import type { Stage, Task } from "../../task/task.js";
import {
  describeRefusal,
  isPlanted,
  isRefusal,
  plantedAs,
  type Refusal,
  readWhole,
  removeEntry,
  replaceWith,
} from "../../util/safe-file.js";
import { replicateView } from "../../workspace/views.js";
import type { RunContext } from "../context.js";
import { replicateEnv } from "./env.js";

/** One run of a command in a worktree at a stage: a replicate, an evaluation, a held-out check. */
export interface ReplicateJob {
  /** The cluster job's name, by which a job whose id was never recorded is found again. */
  name: string;
  /** The task's `run` unless given. */
  command?: string;
  worktree: string;
  stage: Stage;
  /** Exported as AR_TRIAL: a trial's number, or another label for runs outside trials. */
  trial: number | string;
  idx: number;
  seed: number;
  logPath: string;
  resultPath: string;
  /** Only what can be resumed needs its placement recorded. */
  onStart?: (placement: Placement) => void;
  onRunning?: (at: number) => void;
  /** A job an earlier orchestrator submitted: followed to its end rather than run again. */
  attach?: string;
  /** What the log is read for; the task's metrics unless given (the held-out check has its own). */
  metrics?: Pick<Task, "metric" | "secondary" | "constraints">;
}

export interface ReplicateRun {
  execution: ReplicateExecution;
  /** The whole log (as capped), "" when none was written. */
  log: string;
  result: Classified;
  /**
   * Why the trial is tampered, when the replicate put a link or a special file where the
   * harness reads its log or result file (neither is read then); else null.
   */
  tampered: string | null;
}

/** The most of a result file that is read: a JSON object of metrics is far smaller. */
export const RESULT_LIMIT = 1_000_000;

/**
 * Runs one job on the run's executor with the task's limits and resources, and classifies it.
 * Contract: every way the job can end (crash, timeout, stop, no log, no result file) is
 * returned in `result`, never thrown; it rejects only when the executor does (no slot left).
 * Records nothing itself: the caller's `onStart`/`onRunning` and what it does with the result do.
 */
export async function runReplicate(ctx: RunContext, job: ReplicateJob): Promise<ReplicateRun> {
  const { task, run, executor } = ctx;
  const { stage, logPath, resultPath } = job;
  const spec: ReplicateSpec = {
    name: job.name,
    command: job.command ?? task.run,
    cwd: job.worktree,
    env: replicateEnv(task, run.tag, {
      trial: job.trial,
      idx: job.idx,
      seed: job.seed,
      resultFile: resultPath,
      stage,
    }),
    logPath,
    logLimit: task.logLimit,
    timeoutMs: stage.timeout * 1000,
    killGraceMs: task.killGrace * 1000,
    gpus: task.resources.gpus,
    cpus: task.resources.cpus,
    signal: ctx.signal,
    sandbox:
      ctx.sandbox.kind === "bwrap"
        ? {
            sandbox: ctx.sandbox,
            view: replicateView(task.root, job.worktree, resultPath, ctx.sandbox.settings),
          }
        : null,
    maxFileSize: ctx.sandbox.settings.maxFileSize,
    // Only the task's own command is known to wait at the gate.
    gated: task.overlap && job.command === undefined,
    onStart: job.onStart ?? (() => undefined),
    ...(job.onRunning ? { onRunning: job.onRunning } : {}),
  };
  // A result file left from before (or written ahead by an earlier replicate, which could
  // write the trial's folder) is not this run's.
  if (job.attach === undefined) rmSync(resultPath, { recursive: true, force: true });
  // Local processes die with their orchestrator: nothing to follow, so the job runs anew.
  const execution =
    job.attach !== undefined && executor.attach
      ? await executor.attach(job.attach, spec)
      : await executor.run(spec);
  const log = readLog(logPath, task.logLimit);
  const resultFile = readWhole(resultPath, RESULT_LIMIT);
  const logText = log === null || isRefusal(log) ? "" : log.text;
  const resultText = resultFile === null || isRefusal(resultFile) ? null : resultFile.text;
  const classified = classify(execution.process, logText, job.metrics ?? task, resultText);
  const hint =
    classified.outcome === "crash" ? sandboxHint(logText, ctx.sandbox.kind === "bwrap") : null;
  const result = hint ? { ...classified, reason: `${classified.reason} (${hint})` } : classified;
  if (log !== null && isRefusal(log)) return refusedLog(execution, result, logPath, log);
  if (resultFile !== null && isRefusal(resultFile))
    return refusedResult(execution, result, resultPath, resultFile, logText);
  return { execution, log: logText, result, tampered: null };
}

/**
 * A log the harness would not read: nothing in it counts. One the replicate planted is
 * replaced by a note saying so, so that what reads the log later (a researcher's brief,
 * the report) does not go through it either.
 */
function refusedLog(
  execution: ReplicateExecution,
  result: Classified,
  logPath: string,
  refusal: Refusal,
): ReplicateRun {
  const planted = isPlanted(refusal);
  const reason = planted ? plantedLogReason(refusal) : describeRefusal("the log", refusal);
  const note = `[autoresearch] ${reason}\n`;
  if (planted) replaceWith(logPath, note);
  return {
    execution,
    log: planted ? note : "",
    result: refused(result, "no_metric", reason),
    tampered: planted ? reason : null,
  };
}

/** Why the trial is tampered when the replicate put `refusal` in place of its log. */
export function plantedLogReason(refusal: Refusal): string {
  return `the replicate replaced its log with ${plantedAs(refusal)}; nothing outside the trial's folder was read or changed`;
}

/**
 * A result file the harness would not read: the replicate reported nothing usable. Nothing
 * reads it later, but a planted one goes all the same, unread.
 */
function refusedResult(
  execution: ReplicateExecution,
  result: Classified,
  resultPath: string,
  refusal: Refusal,
  log: string,
): ReplicateRun {
  const planted = isPlanted(refusal);
  const reason = planted
    ? `the replicate replaced its result file (AR_RESULT_FILE) with ${plantedAs(refusal)}; it was not read`
    : `${describeRefusal("the result file (AR_RESULT_FILE)", refusal)}; it was not read`;
  if (planted) {
    try {
      removeEntry(resultPath);
    } catch {}
  }
  return {
    execution,
    log,
    result: refused(result, "bad_metric", reason),
    tampered: planted ? reason : null,
  };
}

/**
 * A replicate whose metric cannot be trusted: one that crashed, timed out or was stopped
 * keeps that outcome (the refusal added to its reason); any other gets `outcome`.
 */
function refused(result: Classified, outcome: Outcome, reason: string): Classified {
  const ended = ["interrupted", "timeout", "crash"].includes(result.outcome);
  return {
    outcome: ended ? result.outcome : outcome,
    reason: ended ? `${result.reason}; ${reason}` : reason,
    metric: null,
    metrics: result.metrics,
  };
}
