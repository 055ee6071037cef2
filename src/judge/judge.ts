import type { z } from "zod";
import type { Estimate, Verdict } from "../ledger/types.js";
import type { Classified } from "../metrics/outcome.js";
import type { Goal } from "../metrics/spec.js";
import type { Spread } from "./stats.js";

export interface JudgeContext {
  goal: Goal;
  metricName: string;
  minEffect: number;
  /** The baseline is the unchanged code: it is kept whenever it produces a metric. */
  baseline: boolean;
  /** The parent's metric: the mean of its replicates. */
  incumbentMetric: number | null;
  /** The parent's replicate values by seed, for comparisons on equal seeds. */
  parentBySeed: Map<number, number>;
  /** The run's base seed; replicate i uses seed + i. */
  seed: number;
  /** Replicates per trial at most (and of the baseline's noise floor). */
  seeds: number;
  /** One-sided confidence of bounds, such as 0.95. */
  confidence: number;
  /** The run's pooled spread of one paired difference, before this trial; null if unknown. */
  pairedSpread: Spread | null;
  /** Lines the change adds minus lines it removes: negative for a simplification. */
  netLines: number;
}

/** One finished replicate and the seed it ran with. */
export interface Replicated {
  seed: number;
  result: Classified;
}

/** Either run one more replicate with this seed, or stop with a verdict. */
export type JudgeStep =
  | { kind: "replicate"; seed: number }
  | {
      kind: "verdict";
      verdict: Verdict;
      reason: string | null;
      metric: number | null;
      estimate?: Estimate;
    };

/**
 * A keep rule. The orchestrator asks `next` after each replicate, with every replicate
 * of the trial so far, until it returns a verdict.
 * Contract: pure; never throws; asks for at least one replicate before any verdict.
 */
export interface Judge {
  readonly name: string;
  next(context: JudgeContext, done: Replicated[]): JudgeStep;
}

/** One kind of judge, as the registry in `index.ts` lists it. */
export interface JudgeKind {
  readonly name: string;
  /** Replicates per trial at most, and of the baseline's noise floor, unless the task says. */
  readonly seeds: number;
  /** Fields of its own in the task file's `judge:` section, besides the shared ones. */
  readonly settings?: z.ZodRawShape;
  /** `settings`: the task's `judge:` section, its own fields by their camelCase names. */
  create(settings: Record<string, unknown>): Judge;
}

/** The verdict for a replicate that produced no usable metric, or null if it did. */
export function failedVerdict(replicate: Classified): JudgeStep | null {
  const verdict: Verdict | null = {
    ok: null,
    constraint: "discard" as const,
    crash: "crash" as const,
    no_metric: "crash" as const,
    bad_metric: "crash" as const,
    timeout: "timeout" as const,
    interrupted: "interrupted" as const,
  }[replicate.outcome];
  if (!verdict) return null;
  return { kind: "verdict", verdict, reason: replicate.reason, metric: replicate.metric };
}

/** The first replicate that failed, as a verdict. */
export function firstFailure(done: Replicated[]): JudgeStep | null {
  for (const r of done) {
    const failed = failedVerdict(r.result);
    if (failed) return failed;
  }
  return null;
}

/** The baseline: `seeds` replicates (its spread is the run's noise floor), then kept. */
export function baselineStep(context: JudgeContext, done: Replicated[]): JudgeStep {
  if (done.length < context.seeds) return { kind: "replicate", seed: context.seed + done.length };
  const values = done.map((r) => r.result.metric!);
  const metric = values.reduce((a, b) => a + b, 0) / values.length;
  return { kind: "verdict", verdict: "keep", reason: "baseline", metric };
}

export const fmt = (x: number) => Number(x.toPrecision(6)).toString();

/** Two values, each with the digits it takes to tell them apart (six at least). */
export function fmtApart(a: number, b: number): [string, string] {
  for (let digits = 6; digits < 17; digits++) {
    const [x, y] = [Number(a.toPrecision(digits)), Number(b.toPrecision(digits))];
    if (x !== y || a === b) return [String(x), String(y)];
  }
  return [String(a), String(b)];
}
