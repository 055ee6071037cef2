import type { JudgeContext } from "../../judge/judge.js";
import { pool, type Spread } from "../../judge/stats.js";
import type { NoiseFloor, TrialRow } from "../../ledger/types.js";
import type { RunContext } from "../context.js";

/** The parent's replicate values by seed: the trial whose commit is the parent, in this run. */
function parentValues(ctx: RunContext, trial: TrialRow): Map<number, number> {
  const parent = ctx.ledger
    .trials(ctx.run.id)
    .find((t) => t.commit === trial.parentCommit && t.verdict === "keep");
  const bySeed = new Map<number, number[]>();
  if (parent)
    for (const r of ctx.ledger.replicates(parent.id))
      if (r.outcome === "ok" && r.metric !== null)
        bySeed.set(r.seed, [...(bySeed.get(r.seed) ?? []), r.metric]);
  return new Map(
    [...bySeed].map(([seed, values]) => [seed, values.reduce((a, b) => a + b, 0) / values.length]),
  );
}

/**
 * The run's spread of one paired difference so far: √2 × the noise floor (two independent
 * draws), pooled with the spreads the judge measured on earlier trials.
 */
export function pairedSpread(ctx: RunContext): Spread | null {
  const spreads: Spread[] = [];
  const noise = noiseFloor(ctx);
  if (noise?.sd) spreads.push({ sd: Math.SQRT2 * noise.sd, df: noise.values.length - 1 });
  for (const t of ctx.ledger.trials(ctx.run.id))
    if (t.estimate?.sd != null && t.estimate.n >= 2)
      spreads.push({ sd: t.estimate.sd, df: t.estimate.n - 1 });
  return pool(spreads);
}

export function noiseFloor(ctx: RunContext): NoiseFloor | null {
  const run = ctx.ledger.runById(ctx.run.id)!;
  return run.noiseJson ? (JSON.parse(run.noiseJson) as NoiseFloor) : null;
}

/** Everything the judge needs about a trial and the run, read once per trial. */
export function judgeContext(
  ctx: RunContext,
  trial: TrialRow,
  parentMetric: number | null,
): JudgeContext {
  const { task, run } = ctx;
  const row = ctx.ledger.trialById(trial.id) ?? trial;
  return {
    goal: task.metric.goal,
    metricName: task.metric.name,
    minEffect: task.judge.minEffect,
    baseline: trial.baseline,
    incumbentMetric: parentMetric,
    parentBySeed: parentValues(ctx, trial),
    seed: run.seed,
    seeds: task.stages[0]!.seeds,
    confidence: task.judge.confidence,
    pairedSpread: pairedSpread(ctx),
    netLines: (row.linesAdded ?? 0) - (row.linesRemoved ?? 0),
  };
}
