import { isBetter } from "../metrics/compare.js";
import { failedVerdict, type Judge } from "./judge.js";

const fmt = (x: number) => Number(x.toPrecision(6)).toString();

/**
 * karpathy/autoresearch's rule: one replicate, kept if strictly better than the
 * incumbent (by more than `min_effect` when set). Every trial uses the run's seed, so
 * comparisons share their randomness.
 */
export function createGreedyJudge(): Judge {
  return {
    name: "greedy",
    next(context, done) {
      const replicate = done[0];
      if (!replicate) return { kind: "replicate", seed: context.seed };
      const failed = failedVerdict(replicate);
      if (failed) return failed;
      const metric = replicate.metric!;
      const name = context.metricName;
      if (context.baseline || context.incumbentMetric === null)
        return { kind: "verdict", verdict: "keep", reason: "baseline", metric };
      const incumbent = context.incumbentMetric;
      const margin = context.minEffect ? ` by more than ${context.minEffect}` : "";
      if (isBetter(metric, incumbent, context.goal, context.minEffect))
        return {
          kind: "verdict",
          verdict: "keep",
          reason: `${name} ${fmt(metric)} beats the incumbent's ${fmt(incumbent)}${margin}`,
          metric,
        };
      return {
        kind: "verdict",
        verdict: "discard",
        reason: `${name} ${fmt(metric)} does not beat the incumbent's ${fmt(incumbent)}${margin}`,
        metric,
      };
    },
  };
}
