import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ReplicateSpec } from "../executors/executor.js";
import type { JudgeStep } from "../judge/judge.js";
import type { ReplicateRow, TrialRow } from "../ledger/types.js";
import { type Classified, classify, logTail } from "../metrics/outcome.js";
import { processStartTime } from "../util/proc.js";
import { protectedFingerprint, tamperedFiles } from "../workspace/protect.js";
import type { RunContext } from "./context.js";
import { replicateEnv } from "./env.js";
import { paths, replicateLog, replicateResult } from "./paths.js";
import { ensureSetup } from "./setup.js";

export type Verdicted = Extract<JudgeStep, { kind: "verdict" }>;

/** A replicate left running by an earlier orchestrator that the executor can follow. */
export interface Attach {
  replicate: ReplicateRow;
  jobId: string;
}

/** Replicates already finished, as the judge sees them. */
function doneSoFar(ctx: RunContext, trial: TrialRow): Classified[] {
  return ctx.ledger
    .replicates(trial.id)
    .filter((r) => r.state === "done" && r.outcome !== null)
    .map((r) => ({ outcome: r.outcome!, reason: r.reason, metric: r.metric, metrics: r.metrics }));
}

/**
 * Runs replicates until the judge has a verdict, comparing with the trial's own parent.
 * A replicate that changes a protected file ends the trial as tampered. With `attach`,
 * the first replicate is one already submitted by an earlier orchestrator.
 */
export async function runReplicates(
  ctx: RunContext,
  trial: TrialRow,
  worktree: string,
  commit: string,
  parentMetric: number | null,
  attach?: Attach,
): Promise<Verdicted> {
  const { ledger, run, task } = ctx;
  const expected = await protectedFingerprint(task.root, commit, task.protected);
  const dir = paths.trial(task.root, run.tag, trial.n);
  mkdirSync(paths.cache(task.root), { recursive: true });
  const done = doneSoFar(ctx, trial);
  let pending = attach;
  for (;;) {
    const step = ctx.judge.next(
      {
        goal: task.metric.goal,
        metricName: task.metric.name,
        minEffect: task.judge.minEffect,
        baseline: trial.baseline,
        incumbentMetric: parentMetric,
        seed: run.seed,
      },
      done,
    );
    if (step.kind === "verdict") return step;
    const stopped: Verdicted = {
      kind: "verdict",
      verdict: "interrupted",
      reason: "stopped before it ran",
      metric: null,
    };
    if (!pending && (ctx.signal.aborted || !(await ensureSetup(ctx, worktree, commit))))
      return stopped;

    const idx = pending?.replicate.idx ?? ledger.replicates(trial.id).length;
    const logPath = join(dir, replicateLog(idx));
    const resultPath = join(dir, replicateResult(idx));
    const replicateId =
      pending?.replicate.id ??
      ledger.startReplicate({ trialId: trial.id, idx, seed: step.seed, slot: null, logPath });
    const seed = pending?.replicate.seed ?? step.seed;
    const title = ledger.trialById(trial.id)?.title ?? "";
    const spec: ReplicateSpec = {
      name: `ar-${run.tag}-${trial.n}-${idx}`,
      command: task.run,
      cwd: worktree,
      env: replicateEnv(task, run.tag, { trial: trial.n, idx, seed, resultFile: resultPath }),
      logPath,
      logLimit: task.logLimit,
      timeoutMs: task.timeout * 1000,
      killGraceMs: task.killGrace * 1000,
      gpus: task.resources.gpus,
      cpus: task.resources.cpus,
      signal: ctx.signal,
      onStart: ({ slot, pid, jobId }) => {
        ledger.setReplicateProcess(replicateId, {
          slot: slot.id,
          pid: pid ?? null,
          pidStart: pid ? processStartTime(pid) : null,
          jobId: jobId ?? null,
          gpus: slot.gpus?.join(",") ?? null,
        });
        ctx.emit({
          type: "replicate-start",
          n: trial.n,
          idx,
          slot: slot.id,
          title,
          budget: task.budget,
          startedAt: Date.now(),
        });
      },
      onRunning: (at) => {
        ledger.setReplicateRunning(replicateId, at);
        ctx.emit({ type: "replicate-running", n: trial.n, idx, at });
      },
    };
    const execution =
      pending && ctx.executor.attach
        ? await ctx.executor.attach(pending.jobId, spec)
        : await ctx.executor.run(spec);
    pending = undefined;
    const log = existsSync(logPath) ? readFileSync(logPath, "utf8") : "";
    const resultFile = existsSync(resultPath) ? readFileSync(resultPath, "utf8") : null;
    const classified = classify(execution.process, log, task, resultFile);
    ledger.finishReplicate(replicateId, {
      outcome: classified.outcome,
      reason: classified.reason,
      exitCode: execution.process.exitCode,
      signal: execution.process.signal,
      metric: classified.metric,
      metrics: classified.metrics,
      logBytes: execution.process.logBytes,
      logTail: logTail(log),
      durationMs: execution.process.durationMs,
      ...(execution.process.endedAt ? { endedAt: execution.process.endedAt } : {}),
    });
    ctx.emit({
      type: "replicate-end",
      n: trial.n,
      idx,
      slot: execution.slot.id,
      outcome: classified.outcome,
      metric: classified.metric,
    });
    const tampered = tamperedFiles(worktree, expected);
    if (tampered.length)
      return {
        kind: "verdict",
        verdict: "tampered",
        reason: `the replicate changed protected files: ${tampered.join(", ")}`,
        metric: null,
      };
    done.push(classified);
  }
}
