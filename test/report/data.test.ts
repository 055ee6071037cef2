import { describe, expect, it } from "vitest";
import { promotions } from "../../src/ledger/promotions.js";
import { loadReportData } from "../../src/report/data.js";
import { progressSpec, progressTitle, yDomain } from "../../src/report/progress.js";
import { openLedgerReadOnly } from "../../src/report/read-only.js";
import { renderSvg } from "../../src/report/render.js";
import { hours, renderReportHtml } from "../../src/report/report-html.js";
import { additivity, transfers } from "../../src/report/transfer.js";
import { tempDir } from "../helpers.js";
import { fixtureLedger, HISTORY } from "./fixture.js";

describe("the report's data", () => {
  it("summarises a run: counts, baseline → best, improvements ranked by gain, effort and diffs", () => {
    const root = tempDir();
    const { ledger, run } = fixtureLedger(root, HISTORY, { gpus: 2 });
    const data = loadReportData(ledger, run, { root });
    ledger.close();
    expect(data.summary).toMatchObject({
      trials: 6,
      experiments: 5,
      kept: 2,
      crashed: 1,
      keepRate: 0.4,
      crashRate: 0.2,
      baseline: 1.0,
      best: 0.85,
      bestTrial: 5,
      trialsPerKeep: 2.5,
      noiseFloor: null,
      llmCostUsd: null,
    });
    expect(data.summary.totalImprovement).toBeCloseTo(0.15);
    expect(data.summary.relativeImprovement).toBeCloseTo(0.15);
    // Six replicates of 5 s on 2 GPUs each.
    expect(data.summary.replicateHours).toBeCloseTo(30 / 3600);
    expect(data.summary.gpuHours).toBeCloseTo(60 / 3600);
    expect(data.improvements.map((k) => [k.n, k.effort])).toEqual([
      [1, 1],
      [5, 4],
    ]);
    expect(data.improvements[0]!.delta).toBeCloseTo(0.1);
    expect(data.improvements[1]!.delta).toBeCloseTo(0.05);
    expect(data.improvements[0]!.diff).toContain("+LR = 0.02");
    expect(data.slots.map((s) => s.slot)).toEqual(["cpu0", "cpu0", "cpu1", "cpu1", "cpu0", "cpu0"]);
    expect(data.heldOut).toEqual([]);
    expect(data.transfer).toEqual([]);
  });

  it("shows a transfer table with the stage's effects under its column and rounded numbers", () => {
    const root = tempDir();
    const { ledger, run } = fixtureLedger(root, HISTORY, { gpus: 0 });
    const id = promotions.create(ledger, {
      runId: run.id,
      stage: "large",
      incumbentN: 5,
      incumbentCommit: "c5",
      seeds: 3,
    });
    promotions.finish(ledger, id, "done", null, {
      metric: "val_bpb",
      stage: "large",
      seeds: 3,
      baseline: 0.16969099999999998,
      incumbent: 0.1412345678,
      stacked: 0.0284564,
      sum: 0.0184,
      additive: false,
      test: {
        spread: 0.0056,
        from: "pooled within arms (8 degrees of freedom)",
        tolerance: 0.0159,
      },
      rows: [
        { n: 1, title: "LR up", found: 0.01, atStage: 0.0184, transfers: true },
        { n: 2, title: "WD down", found: 0.005, atStage: null, transfers: null, isolable: false },
      ],
    });
    const data = loadReportData(ledger, run, { root });
    const [table] = data.transfer;
    ledger.close();
    expect(table!.title).toBe("stage large, 3 seeds each: baseline 0.169691 → incumbent 0.141235");
    expect(table!.columns).toEqual(["found", "at large"]);
    expect(table!.rows[0]).toEqual({
      label: "#1 LR up",
      values: [0.01, 0.0184],
      transfers: "yes",
    });
    expect(table!.rows.slice(-2)).toEqual([
      { label: "stacked (the incumbent against the baseline)", values: [null, 0.0284564] },
      { label: "the single effects summed", values: [null, 0.0184] },
    ]);
    // The same words as the terminal's table: the verdict and how it was tested.
    expect(table!.notes[0]).toBe("not additive: the changes interact");
    expect(table!.notes[1]).toMatch(
      /^test: \|stacked − summed\| ≤ 0\.0159, two standard errors from a spread of .+ per evaluation, pooled within arms \(8 degrees of freedom\)$/,
    );
    // The HTML report says the same, in words.
    const html = renderReportHtml(data, { progress: "", timeline: null });
    expect(html).toContain("<td>yes</td>");
    expect(html).toContain("<td>not isolable</td>");
    expect(html).toContain("<p>not additive: the changes interact</p>");
  });

  it("tells a change that could not be taken out from one whose evaluation gave no value", () => {
    const row = { n: 2, title: "t", found: 0.1, atStage: null, transfers: null };
    expect(transfers({ ...row, isolable: false })).toBe("not isolable");
    expect(transfers({ ...row, isolable: true })).toBe("no value");
    expect(transfers(row)).toBe("not isolable"); // a table from before `isolable` was kept
    const table = {
      metric: "m",
      stage: "large",
      seeds: 1,
      baseline: 1,
      incumbent: 0.8,
      stacked: 0.2,
      sum: null,
      additive: null,
      rows: [
        { ...row, n: 1, atStage: 0.1, transfers: true, isolable: true },
        { ...row, isolable: true },
      ],
    };
    expect(additivity(table)).toMatch(/^additivity unknown: an evaluation gave no value/);
  });

  it("has no GPU-hours for a CPU task, and reads through a read-only connection", () => {
    const root = tempDir();
    fixtureLedger(root, HISTORY.slice(0, 2), { gpus: 0 }).ledger.close();
    const ledger = openLedgerReadOnly(root);
    const data = loadReportData(ledger, ledger.runs()[0]!);
    expect(data.summary.gpuHours).toBeNull();
    expect(data.improvements[0]!.diff).toBeNull();
    expect(() => ledger.db.prepare("DELETE FROM trials").run()).toThrow(/readonly/);
    ledger.close();
  });

  it("draws the y-range around the kept trials and the bulk of the rest; outliers sit at its edge", async () => {
    const root = tempDir();
    const { ledger, run } = fixtureLedger(root);
    const data = loadReportData(ledger, run);
    ledger.close();
    const [lo, hi] = yDomain(data)!;
    expect(lo).toBeLessThan(0.85);
    expect(lo).toBeGreaterThan(0.8);
    expect(hi).toBeGreaterThan(1.0);
    // 7.5 is far off: drawn on the edge, it does not stretch the axis.
    expect(hi).toBeLessThan(1.05);
    expect(progressTitle(data)).toBe("5 experiments, 2 kept improvements");
    const svg = await renderSvg(progressSpec(data));
    expect(svg).toContain("5 experiments, 2 kept improvements");
    expect(svg).toContain("off the scale (1)");
    expect(svg).toContain(">7.5</text>");
    expect(svg).toContain("cosine schedule");
  });

  it("maximizing metrics keep the baseline at the bottom of the range", () => {
    const root = tempDir();
    const { ledger, run } = fixtureLedger(
      root,
      [
        { title: "baseline", verdict: "keep", metric: 50 },
        { title: "better", verdict: "keep", metric: 60 },
        { title: "worse", verdict: "discard", metric: 10 },
      ],
      { goal: "maximize", metric: "accuracy" },
    );
    const data = loadReportData(ledger, run);
    ledger.close();
    const [lo, hi] = yDomain(data)!;
    expect(lo).toBeLessThan(50);
    expect(lo).toBeGreaterThan(45);
    expect(hi).toBeGreaterThan(60);
    expect(data.improvements[0]!.delta).toBe(10);
  });
});

describe("the report's numbers", () => {
  it("keeps three significant digits of a short run's GPU-hours", () => {
    expect(hours(0.003)).toBe("0.003");
    expect(hours(0.01234)).toBe("0.0123");
    expect(hours(2.5)).toBe("2.5");
    expect(hours(123.456)).toBe("123.5");
  });
});
