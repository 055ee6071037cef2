import { improvement, isBetter } from "../metrics/compare.js";
import { baselineStep, firstFailure, fmtApart, type Judge, type JudgeKind } from "./judge.js";

/**
 * karpathy/autoresearch's rule: one replicate, kept if strictly better than the
 * incumbent (by more than `min_effect` when set). Every trial uses the run's seed, so
 * comparisons share their randomness.
 */
export const greedyJudge: JudgeKind = { name: "greedy", seeds: 1, create: createGreedyJudge };

export function createGreedyJudge(): Judge {
  return {
    name: "greedy",
    next(context, done) {
      const failed = firstFailure(done);
      if (failed) return failed;
      if (context.baseline || context.incumbentMetric === null) return baselineStep(context, done);
      const replicate = done[0];
      if (!replicate) return { kind: "replicate", seed: context.seed };
      const metric = replicate.result.metric!;
      const name = context.metricName;
      const incumbent = context.parentBySeed.get(replicate.seed) ?? context.incumbentMetric;
      const margin = context.minEffect ? ` by more than ${context.minEffect}` : "";
      const estimate = {
        n: 1,
        mean: improvement(metric, incumbent, context.goal),
        sd: null,
        df: null,
        lower: null,
        upper: null,
        confidence: context.confidence,
      };
      const better = isBetter(metric, incumbent, context.goal, context.minEffect);
      const [shown, parent] = fmtApart(metric, incumbent);
      return {
        kind: "verdict",
        verdict: better ? "keep" : "discard",
        reason: `${name} ${shown} ${better ? "beats" : "does not beat"} its parent's ${parent}${margin}`,
        metric,
        estimate,
      };
    },
  };
}
