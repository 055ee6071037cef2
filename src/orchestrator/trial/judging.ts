import type { JudgeContext } from "../../judge/judge.js";
import { pool, type Spread } from "../../judge/stats.js";
import type { NoiseFloor, TrialRow } from "../../ledger/types.js";
import type { RunContext } from "../context.js";

/** The parent's replicate values by seed: the trial whose commit is the parent, in this run. */
function parentValues(ctx: RunContext, trial: TrialRow): Map<number, number> {
  const parent = ctx.ledger.keptAt(ctx.run.id, trial.parentCommit);
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
  const earlier = estimates(ctx);
  if (earlier.df > 0) spreads.push({ sd: Math.sqrt(earlier.squares / earlier.df), df: earlier.df });
  return pool(spreads);
}

/**
 * The judge's earlier estimates of the run, pooled as sums (squares weighted by degrees of
 * freedom): read from the ledger once per session, then added to as trials finish, so a
 * trial's judging costs the same however long the run.
 */
const pooled = new WeakMap<RunContext, { squares: number; df: number }>();

function estimates(ctx: RunContext): { squares: number; df: number } {
  let sums = pooled.get(ctx);
  if (!sums) {
    sums = { squares: 0, df: 0 };
    for (const t of ctx.ledger.trials(ctx.run.id)) addEstimate(sums, t.estimate);
    pooled.set(ctx, sums);
  }
  return sums;
}

function addEstimate(sums: { squares: number; df: number }, e: TrialRow["estimate"]): void {
  if (e?.sd == null || e.n < 2 || !Number.isFinite(e.sd)) return;
  sums.squares += (e.n - 1) * e.sd ** 2;
  sums.df += e.n - 1;
}

/** A trial finished with `estimate`: counted, once the sums exist (else they read it). */
export function countEstimate(ctx: RunContext, estimate: TrialRow["estimate"]): void {
  const sums = pooled.get(ctx);
  if (sums) addEstimate(sums, estimate);
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
