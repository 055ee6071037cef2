import { existsSync, readFileSync } from "node:fs";
import type { Placement, ReplicateExecution, ReplicateSpec } from "../../executors/executor.js";
import { type Classified, classify } from "../../metrics/outcome.js";
import type { Stage, Task } from "../../task/task.js";
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
  /** The whole log, "" when none was written. */
  log: string;
  result: Classified;
}

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
    onStart: job.onStart ?? (() => undefined),
    ...(job.onRunning ? { onRunning: job.onRunning } : {}),
  };
  // Local processes die with their orchestrator: nothing to follow, so the job runs anew.
  const execution =
    job.attach !== undefined && executor.attach
      ? await executor.attach(job.attach, spec)
      : await executor.run(spec);
  const log = existsSync(logPath) ? readFileSync(logPath, "utf8") : "";
  const resultFile = existsSync(resultPath) ? readFileSync(resultPath, "utf8") : null;
  const result = classify(execution.process, log, job.metrics ?? task, resultFile);
  return { execution, log, result };
}
