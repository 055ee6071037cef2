import type { Estimate } from "../ledger/types.js";
import { improvement } from "../metrics/compare.js";
import {
  baselineStep,
  firstFailure,
  fmt,
  type Judge,
  type JudgeKind,
  type JudgeStep,
} from "./judge.js";
import { mean, pool, sd, tQuantile } from "./stats.js";

/** A simplification is worth more replicates unless it is this many spreads below the bar. */
const CLEARLY_WORSE = 2;

/**
 * The noise-aware rule. Each replicate of a trial runs on the seed the parent also ran
 * (seed, seed + 1, ...), and is compared with the parent's value on that seed: paired
 * differences d (positive means better). A trial whose first replicate does not look
 * better (d ≤ min_effect) stops there; one that does gets up to `seeds` replicates (fewer
 * when the answer is clear sooner), and it is kept only if the
 * one-sided lower confidence bound of the mean improvement exceeds `min_effect`:
 *
 *   mean(d) − t(confidence, df) · s / √n  >  min_effect
 *
 * where s is the spread of one paired difference pooled over this trial and the run so
 * far (starting from √2 × the noise floor). A change that removes more lines than it adds
 * is also kept when it is not worse on average and not significantly worse: at equal
 * effect within noise, the simpler code wins.
 */
export const confirmJudge: JudgeKind = { name: "confirm", seeds: 3, create: createConfirmJudge };

export function createConfirmJudge(): Judge {
  return {
    name: "confirm",
    next(context, done): JudgeStep {
      const failed = firstFailure(done);
      if (failed) return failed;
      if (context.baseline || context.incumbentMetric === null) return baselineStep(context, done);
      if (done.length === 0) return { kind: "replicate", seed: context.seed };
      const parent = context.incumbentMetric;
      const diffs = done.map((r) =>
        improvement(r.result.metric!, context.parentBySeed.get(r.seed) ?? parent, context.goal),
      );
      const own = sd(diffs);
      const spread = pool([
        ...(context.pairedSpread ? [context.pairedSpread] : []),
        ...(own !== null ? [{ sd: own, df: diffs.length - 1 }] : []),
      ]);
      const n = diffs.length;
      const m = mean(diffs);
      const metric = mean(done.map((r) => r.result.metric!));
      const t = spread ? tQuantile(context.confidence, spread.df) : null;
      const half = spread && t !== null ? (t * spread.sd) / Math.sqrt(n) : null;
      const estimate: Estimate = {
        n,
        mean: m,
        sd: own,
        df: spread?.df ?? null,
        lower: half === null ? null : m - half,
        upper: half === null ? null : m + half,
        confidence: context.confidence,
      };
      const bar = context.minEffect;
      // Seeds the parent did not run (a baseline measured by another host, on its own
      // seeds) are compared with the parent's mean, and said to be.
      const paired = done.filter((r) => context.parentBySeed.has(r.seed)).length;
      const verdict = (v: "keep" | "discard", why: string): JudgeStep => ({
        kind: "verdict",
        verdict: v,
        reason: `${why}: ${describe(estimate, paired, context.metricName)}`,
        metric,
        estimate,
      });
      // Only a trial that looks better is worth more seeds. A simplification gets them too
      // unless it is clearly worse, since it wins at equal effect.
      const simplification = context.netLines < 0;
      if (n === 1 && !simplification && m <= bar)
        return verdict("discard", "not better after one replicate");
      if (n === 1 && simplification && spread && m < bar - CLEARLY_WORSE * spread.sd)
        return verdict("discard", "clearly worse after one replicate");
      // A keep is confirmed on a second seed at least (unless only one is allowed).
      const confirmed = n >= Math.min(2, context.seeds);
      const clear =
        confirmed &&
        (estimate.lower !== null ? estimate.lower > bar : m > bar && context.seeds === 1);
      // More seeds only while the answer is open: a clear win stops early, and so does a
      // trial whose mean fell back below the bar.
      if (clear) return verdict("keep", `better by more than ${bar}`);
      if (n >= 2 && !simplification && m <= bar)
        return verdict("discard", `not better after ${n} replicates`);
      if (n < context.seeds) return { kind: "replicate", seed: context.seed + n };
      const simpler =
        simplification && m >= -bar && (estimate.upper === null || estimate.upper >= 0);
      if (simpler)
        return verdict(
          "keep",
          `simpler (${-context.netLines} lines fewer) and as good within noise`,
        );
      return verdict(
        "discard",
        `not better by more than ${bar} with ${Math.round(context.confidence * 100)}% confidence`,
      );
    },
  };
}

function describe(e: Estimate, paired: number, metric: string): string {
  const bounds =
    e.lower === null
      ? ""
      : ` (one-sided ${Math.round(e.confidence * 100)}% bounds: lower ${fmt(e.lower)}, upper ${fmt(e.upper!)})`;
  const seeds = `${e.n} seed${e.n === 1 ? "" : "s"}`;
  const over =
    paired === e.n
      ? `${e.n} paired seed${e.n === 1 ? "" : "s"}`
      : paired === 0
        ? `${seeds} against the parent's mean`
        : `${seeds} (${paired} paired, the rest against the parent's mean)`;
  return `${metric} improved by ${fmt(e.mean)} on average over ${over}${bounds}`;
}
