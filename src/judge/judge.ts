import type { Verdict } from "../ledger/types.js";
import type { Classified } from "../metrics/outcome.js";
import type { Goal } from "../task/task.js";

export interface JudgeContext {
  goal: Goal;
  metricName: string;
  minEffect: number;
  /** The baseline is the unchanged code: it is kept whenever it produces a metric. */
  baseline: boolean;
  incumbentMetric: number | null;
  /** The run's base seed; replicate seeds derive from it. */
  seed: number;
}

/** Either run one more replicate with this seed, or stop with a verdict. */
export type JudgeStep =
  | { kind: "replicate"; seed: number }
  | { kind: "verdict"; verdict: Verdict; reason: string | null; metric: number | null };

/**
 * A keep rule. The orchestrator asks `next` after each replicate, with every replicate
 * of the trial so far, until it returns a verdict.
 * Contract: pure; never throws; asks for at least one replicate before any verdict.
 */
export interface Judge {
  readonly name: string;
  next(context: JudgeContext, done: Classified[]): JudgeStep;
}

/** The verdict for a replicate that produced no usable metric. */
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
