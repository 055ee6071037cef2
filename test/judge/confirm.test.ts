import { describe, expect, it } from "vitest";
import { createConfirmJudge } from "../../src/judge/confirm.js";
import { createGreedyJudge } from "../../src/judge/greedy.js";
import type { JudgeContext, Replicated } from "../../src/judge/judge.js";
import { pool, sd, tQuantile } from "../../src/judge/stats.js";

const base: JudgeContext = {
  goal: "minimize",
  metricName: "loss",
  minEffect: 0,
  baseline: false,
  incumbentMetric: 1.0,
  parentBySeed: new Map([
    [42, 1.0],
    [43, 1.02],
    [44, 0.98],
  ]),
  seed: 42,
  seeds: 3,
  confidence: 0.95,
  pairedSpread: { sd: 0.02, df: 4 },
  netLines: 2,
};

const ok = (seed: number, metric: number): Replicated => ({
  seed,
  result: { outcome: "ok", reason: null, metric, metrics: { loss: metric } },
});

/** Runs the judge against fixed replicate values by seed, as the orchestrator would. */
function judge(context: JudgeContext, values: Record<number, number>) {
  const j = createConfirmJudge();
  const done: Replicated[] = [];
  for (;;) {
    const step = j.next(context, done);
    if (step.kind === "verdict") return { step, seeds: done.map((d) => d.seed) };
    done.push(ok(step.seed, values[step.seed]!));
  }
}

describe("the confirm judge", () => {
  it("runs the baseline on k seeds and keeps it with their mean", () => {
    const { step, seeds } = judge(
      { ...base, baseline: true, incumbentMetric: null },
      { 42: 1, 43: 1.1, 44: 0.9 },
    );
    expect(seeds).toEqual([42, 43, 44]);
    expect(step).toMatchObject({ verdict: "keep", reason: "baseline", metric: 1 });
  });

  it("keeps a real improvement as soon as its bound clears the bar, with the estimate", () => {
    const { step, seeds } = judge(base, { 42: 0.9, 43: 0.93, 44: 0.87 });
    expect(seeds).toEqual([42, 43]);
    expect(step).toMatchObject({ verdict: "keep", metric: 0.915 });
    if (step.kind !== "verdict") throw new Error();
    expect(step.estimate!.n).toBe(2);
    expect(step.estimate!.mean).toBeCloseTo(0.095);
    expect(step.estimate!.lower).toBeGreaterThan(0);
    expect(step.reason).toMatch(
      /^better by more than 0: loss improved by 0.095 on average over 2 paired seeds \(one-sided 95% bounds: lower /,
    );
  });

  it("says when a seed is compared with the parent's mean, not paired", () => {
    // The parent was measured by another host on its own seeds: none of these pair.
    const borrowed = new Map([
      [7, 1.0],
      [8, 1.0],
    ]);
    const alone = judge({ ...base, parentBySeed: borrowed }, { 42: 0.9, 43: 0.93 }).step;
    if (alone.kind !== "verdict") throw new Error();
    expect(alone.reason).toMatch(
      /over 2 seeds against the parent's mean \(one-sided 95% bounds: lower /,
    );
    const some = new Map([[42, 1.0]]);
    const mixed = judge({ ...base, parentBySeed: some }, { 42: 0.9, 43: 0.93 }).step;
    if (mixed.kind !== "verdict") throw new Error();
    expect(mixed.reason).toMatch(/over 2 seeds \(1 paired, the rest against the parent's mean\)/);
  });

  it("uses every seed when the answer stays open, then decides on the bound", () => {
    const { step, seeds } = judge(
      { ...base, pairedSpread: { sd: 0.05, df: 10 } },
      { 42: 0.97, 43: 0.99, 44: 0.96 },
    );
    expect(seeds).toEqual([42, 43, 44]);
    if (step.kind !== "verdict") throw new Error();
    expect(step.estimate!.n).toBe(3);
    expect(step.verdict).toBe(step.estimate!.lower! > 0 ? "keep" : "discard");
  });

  it("discards a change whose improvement is within the noise, recording the estimate", () => {
    const { step, seeds } = judge(base, { 42: 0.995, 43: 1.03, 44: 0.975 });
    expect(seeds).toEqual([42, 43]);
    expect(step).toMatchObject({ verdict: "discard" });
    if (step.kind !== "verdict") throw new Error();
    expect(step.estimate!.lower!).toBeLessThan(0);
    expect(step.reason).toMatch(/^not better after 2 replicates: loss improved by/);
  });

  it("honours min_effect: a real but small gain is not enough", () => {
    const { step } = judge({ ...base, minEffect: 0.2 }, { 42: 0.9, 43: 0.93, 44: 0.87 });
    expect(step).toMatchObject({ verdict: "discard" });
  });

  it("stops after one replicate when a trial does not look better", () => {
    for (const worse of [1.2, 1.001]) {
      const { step, seeds } = judge(base, { 42: worse });
      expect(seeds).toEqual([42]);
      expect(step).toMatchObject({
        verdict: "discard",
        reason: expect.stringMatching(/^not better after one replicate/),
      });
    }
    // A simplification gets more seeds unless it is clearly worse.
    expect(judge({ ...base, netLines: -3 }, { 42: 1.001, 43: 1.02, 44: 0.98 }).seeds).toEqual([
      42, 43, 44,
    ]);
    expect(judge({ ...base, netLines: -3 }, { 42: 1.2 }).step).toMatchObject({
      reason: expect.stringMatching(/^clearly worse after one replicate/),
    });
  });

  it("pairs each replicate with the parent's value on the same seed", () => {
    // Each seed shifts the metric; the change improves every seed by exactly 0.01.
    const context = {
      ...base,
      pairedSpread: null,
      parentBySeed: new Map([
        [42, 1.5],
        [43, 0.5],
        [44, 1.0],
      ]),
    };
    const { step } = judge(context, { 42: 1.49, 43: 0.49, 44: 0.99 });
    expect(step).toMatchObject({ verdict: "keep" });
    if (step.kind !== "verdict") throw new Error();
    expect(step.estimate!.mean).toBeCloseTo(0.01);
  });

  it("keeps a simpler change that is as good within noise, and not one that adds code", () => {
    const values = { 42: 0.999, 43: 1.015, 44: 0.983 };
    expect(judge({ ...base, netLines: -5 }, values).step).toMatchObject({
      verdict: "keep",
      reason: expect.stringMatching(/^simpler \(5 lines fewer\) and as good within noise/),
    });
    expect(judge({ ...base, netLines: 5 }, values).step).toMatchObject({ verdict: "discard" });
  });

  it("turns a failing replicate into the trial's verdict", () => {
    const j = createConfirmJudge();
    const crash: Replicated = {
      seed: 42,
      result: { outcome: "crash", reason: "exit code 1", metric: null, metrics: {} },
    };
    expect(j.next(base, [crash])).toMatchObject({
      kind: "verdict",
      verdict: "crash",
      reason: "exit code 1",
    });
  });
});

describe("the greedy judge", () => {
  it("compares one replicate on the run's seed with the parent's value on that seed", () => {
    const j = createGreedyJudge();
    expect(j.next(base, [])).toEqual({ kind: "replicate", seed: 42 });
    expect(j.next(base, [ok(42, 0.99)])).toMatchObject({
      verdict: "keep",
      reason: "loss 0.99 beats its parent's 1",
    });
    expect(j.next(base, [ok(42, 1.0)])).toMatchObject({ verdict: "discard" });
    // A gain smaller than six digits show is shown with the digits that tell the two apart.
    expect(j.next(base, [ok(42, 0.99999999)])).toMatchObject({
      verdict: "keep",
      reason: "loss 0.99999999 beats its parent's 1",
    });
  });
});

describe("statistics", () => {
  it("matches known t quantiles and pools spreads by degrees of freedom", () => {
    expect(tQuantile(0.95, 2)).toBeCloseTo(2.92, 2);
    expect(tQuantile(0.95, 10)).toBeCloseTo(1.812, 3);
    expect(tQuantile(0.975, 30)).toBeCloseTo(2.042, 3);
    expect(sd([1, 2, 3, 4])).toBeCloseTo(1.291, 3);
    expect(sd([1])).toBeNull();
    expect(
      pool([
        { sd: 1, df: 2 },
        { sd: 2, df: 2 },
      ]),
    ).toEqual({ sd: Math.sqrt(2.5), df: 4 });
  });
});
