import { join } from "node:path";
import type { TrialRow, VerifyResult } from "../../ledger/types.js";
import { isBetter } from "../../metrics/compare.js";
import { paths } from "../../workspace/layout.js";
import type { RunContext } from "../context.js";
import { runReplicate } from "./replicate.js";
import { plantedInFolder } from "./replicates.js";

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
  const held = task.verify;
  if (!held || ctx.signal.aborted) return null;
  const previous = trial.baseline
    ? null
    : (ledger.keptAt(run.id, trial.parentCommit)?.verifyMetric ?? null);
  const dir = paths.trial(task.root, run.tag, trial.n);
  // The check runs the trial's code: it is watched as a replicate is.
  const { watch } = ctx;
  const check = () =>
    runReplicate(ctx, {
      name: `ar-${run.tag}-${trial.n}-verify`,
      command: held.run,
      worktree,
      stage: task.stages[0]!,
      trial: trial.n,
      idx: 0,
      seed: run.seed,
      logPath: join(dir, "verify.log"),
      resultPath: join(dir, "verify.json"),
      // Only the held-out metric counts: the search's secondary metrics and constraints do not apply.
      metrics: {
        metric: { ...task.metric, name: held.metric },
        secondary: [],
        constraints: [],
      },
    });
  const { value: checked, changed: escaped } = await watch.own(worktree, check, trial.n);
  const planted = plantedInFolder(dir, checked.tampered);
  const tampered = escaped.length
    ? `the held-out check changed files outside its worktree: ${escaped.join(", ")} (put back)`
    : planted;
  const result = tampered
    ? { ...checked.result, outcome: "crash" as const, metric: null, reason: tampered }
    : checked.result;
  const value = result.outcome === "ok" ? result.metric : null;
  // A tampering check flags the keep as a held-out failure would.
  const diverged =
    tampered !== null ||
    (previous !== null &&
      value !== null &&
      value !== previous &&
      !isBetter(value, previous, task.metric.goal));
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
