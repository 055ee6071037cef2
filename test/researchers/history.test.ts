import { describe, expect, it } from "vitest";
import type { TrialRow, Verdict } from "../../src/ledger/types.js";
import { estimateTokens, formatHistory } from "../../src/researchers/history.js";

function trial(
  n: number,
  verdict: Verdict,
  metric: number | null,
  incumbentMetric: number | null,
  title: string,
): TrialRow {
  return {
    id: n + 1,
    runId: 1,
    n,
    baseline: n === 0,
    parentCommit: "p",
    commit: "c",
    state: "done",
    verdict,
    reason: verdict === "crash" ? "exit code 1: CUDA out of memory" : null,
    title,
    hypothesis: null,
    researcher: "anthropic",
    metric,
    incumbentMetric,
    metrics: metric === null ? {} : { val_bpb: metric, peak_vram_mb: 40000 + n },
    linesAdded: 1,
    linesRemoved: 1,
    proposeMs: 1,
    commitMs: 1,
    runMs: 1,
    createdAt: n,
    finishedAt: n,
    rebaseOf: null,
    estimate: null,
    verifyMetric: null,
    verify: null,
  };
}

/** A thousand trials: a keep every 25, crashes every 7, the rest discards of varied directions. */
function thousand(): TrialRow[] {
  const trials = [trial(0, "keep", 1, null, "baseline")];
  let best = 1;
  const knobs = ["MATRIX_LR", "WARMUP", "DEPTH", "WINDOW_PATTERN", "weight decay", "muon momentum"];
  for (let n = 1; n < 1000; n++) {
    const title = `${knobs[n % knobs.length]} variant ${n} with a fairly long description of the change`;
    if (n % 25 === 0) {
      trials.push(trial(n, "keep", best - 0.001, best, title));
      best -= 0.001;
    } else if (n % 7 === 0) trials.push(trial(n, "crash", null, best, title));
    else trials.push(trial(n, "discard", best + 0.0001 * (n % 13), best, title));
  }
  return trials;
}

describe("the history a researcher reads", () => {
  it("fits a 1,000-trial run into the token budget with every kept change present", () => {
    const trials = thousand();
    const keeps = trials.filter((t) => t.verdict === "keep");
    expect(keeps).toHaveLength(40);
    for (const budget of [3000, 6000, 24_000]) {
      const text = formatHistory(trials, {
        metric: "val_bpb",
        goal: "minimize",
        secondary: ["peak_vram_mb"],
        budgetTokens: budget,
        crashTails: new Map([
          [994, "Traceback\n  File train.py\nRuntimeError: CUDA out of memory"],
        ]),
      });
      expect(estimateTokens(text)).toBeLessThanOrEqual(budget);
      for (const k of keeps)
        expect(text).toContain(`#${k.n} val_bpb ${Number(k.metric!.toPrecision(6))}`);
      expect(text).toMatch(/earlier trials not listed \(\d+ discard, \d+ crash\)/);
      expect(text).toContain("MATRIX_LR ×");
    }
  });

  it("shows more when there is room: recent trials, near misses and crash logs", () => {
    const text = formatHistory(thousand(), {
      metric: "val_bpb",
      goal: "minimize",
      secondary: ["peak_vram_mb"],
      budgetTokens: 24_000,
      crashTails: new Map([[994, "RuntimeError: CUDA out of memory"]]),
      inFlight: ["DEPTH 8 → 10"],
      elsewhere: ["WARMUP 0 → 0.1: keep 0.95 (beta, NVIDIA H100 x1)"],
    });
    expect(text).toContain(
      "The other hosts' latest trials (values from another hardware class do not compare with these):\n  WARMUP 0 → 0.1: keep 0.95 (beta, NVIDIA H100 x1)",
    );
    expect(text).toContain("The last 40 trials:");
    expect(text).toContain("#999 discard val_bpb");
    expect(text).toContain("[peak_vram_mb 40999]");
    expect(text).toContain("Near misses");
    expect(text).toContain("    | RuntimeError: CUDA out of memory");
    expect(text).toContain("Running right now (do not duplicate):\n  DEPTH 8 → 10");
    expect(text).toContain("#975 val_bpb 0.961 (0.001 better than its parent)");
  });

  it("names short parameters among the directions tried, not the harness's own words", () => {
    const trials = [trial(0, "keep", 1, null, "baseline")];
    for (let n = 1; n < 400; n++)
      trials.push(
        trial(
          n,
          "discard",
          1.01,
          1,
          n % 2 ? `X ${n} → ${n + 1}` : `LR 0.${n} (reconciled from #${n - 1})`,
        ),
      );
    const text = formatHistory(trials, {
      metric: "val_bpb",
      goal: "minimize",
      secondary: [],
      budgetTokens: 1500,
    });
    expect(text).toMatch(/\bX ×\d+/);
    expect(text).toMatch(/\bLR ×\d+/);
    expect(text).not.toMatch(/reconciled ×|from ×/);
  });

  it("says so when there is nothing yet", () => {
    expect(
      formatHistory([], { metric: "m", goal: "maximize", secondary: [], budgetTokens: 100 }),
    ).toBe("No trials yet.");
  });
});
