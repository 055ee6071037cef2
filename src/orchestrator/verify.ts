import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TrialRow, VerifyResult } from "../ledger/types.js";
import { isBetter } from "../metrics/compare.js";
import { classify } from "../metrics/outcome.js";
import type { RunContext } from "./context.js";
import { replicateEnv } from "./env.js";
import { paths } from "./paths.js";

/**
 * Runs the task's held-out check (`verify`) on a new incumbent, in its worktree and on a
 * slot like a replicate, and records its metric beside the search metric. When the search
 * metric improved but the held-out one got worse than the previous incumbent's, the trial
 * is flagged: the search may be fitting its own metric.
 */
export async function verifyIncumbent(
  ctx: RunContext,
  trial: TrialRow,
  worktree: string,
): Promise<VerifyResult | null> {
  const { task, run, ledger } = ctx;
  if (!task.verify || ctx.signal.aborted) return null;
  const previous = trial.baseline
    ? null
    : (ledger.trials(run.id).find((t) => t.commit === trial.parentCommit && t.verdict === "keep")
        ?.verifyMetric ?? null);
  const dir = paths.trial(task.root, run.tag, trial.n);
  const logPath = join(dir, "verify.log");
  const resultFile = join(dir, "verify.json");
  const stage = task.stages[0]!;
  const execution = await ctx.executor.run({
    name: `ar-${run.tag}-${trial.n}-verify`,
    command: task.verify.run,
    cwd: worktree,
    env: replicateEnv(task, run.tag, { trial: trial.n, idx: 0, seed: run.seed, resultFile, stage }),
    logPath,
    logLimit: task.logLimit,
    timeoutMs: stage.timeout * 1000,
    killGraceMs: task.killGrace * 1000,
    gpus: task.resources.gpus,
    cpus: task.resources.cpus,
    signal: ctx.signal,
    onStart: () => undefined,
  });
  const log = existsSync(logPath) ? readFileSync(logPath, "utf8") : "";
  const metric = { ...task.metric, name: task.verify.metric };
  const result = classify(
    execution.process,
    log,
    { metric, secondary: [], constraints: [] },
    existsSync(resultFile) ? readFileSync(resultFile, "utf8") : null,
  );
  const value = result.outcome === "ok" ? result.metric : null;
  const diverged =
    previous !== null &&
    value !== null &&
    value !== previous &&
    !isBetter(value, previous, task.metric.goal);
  const verify: VerifyResult = {
    metric: value,
    previous,
    diverged,
    outcome: result.outcome,
    reason: result.reason,
  };
  ledger.setTrialVerify(trial.id, verify);
  ledger.event(run.id, trial.id, diverged ? "verify-diverged" : "verify", verify);
  ctx.emit({
    type: "verify",
    n: trial.n,
    metric: value,
    previous,
    diverged,
    reason: result.reason,
  });
  return verify;
}
