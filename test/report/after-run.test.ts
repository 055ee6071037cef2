import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { summarize } from "../../src/orchestrator/index.js";
import { formatKept, printReportAfterRun } from "../../src/report/after-run.js";
import { runView } from "../../src/report/dashboard/views.js";
import { loadReportData } from "../../src/report/data.js";
import { formatSummary } from "../../src/report/status.js";
import { quadraticTask, runCli, tempDir } from "../helpers.js";
import { fixtureLedger } from "./fixture.js";

function capture() {
  let text = "";
  return { write: (chunk: string) => (text += chunk), text: () => text };
}

describe("the end of a run", () => {
  it("lists each kept trial: number, metric, title", () => {
    const root = tempDir();
    const { ledger, run } = fixtureLedger(root);
    const text = formatKept(loadReportData(ledger, run));
    ledger.close();
    expect(text.split("\n")).toEqual([
      "kept 2 of 5 experiments:",
      "  #0    val_bpb 1       baseline",
      "  #1    val_bpb 0.9     raise the learning rate",
      "  #5    val_bpb 0.85    cosine schedule",
    ]);
  });

  it("counts another host's adopted head as kept on the line, not as this run's experiment", () => {
    const root = tempDir();
    const adopted = { title: "wider (adopted from host_b)", researcher: "swarm" } as const;
    const { ledger, run } = fixtureLedger(root, [
      { title: "baseline", verdict: "keep", metric: 1 },
      { ...adopted, verdict: "keep", metric: 0.9 },
      { title: "raise the learning rate", verdict: "discard", metric: 0.95 },
    ]);
    const data = loadReportData(ledger, run);
    ledger.close();
    expect(data.summary).toMatchObject({ experiments: 1, kept: 0, keepRate: 0 });
    expect(formatKept(data).split("\n")).toEqual([
      "kept 0 of 1 experiment:",
      "  #0    val_bpb 1       baseline",
      "  #1    val_bpb 0.9     wider (adopted from host_b)",
    ]);
  });

  it("counts an adopted head once, in status, the run's summary and the dashboard too: as its host's keep, not this run's", () => {
    const root = tempDir();
    const { ledger, run } = fixtureLedger(root, [
      { title: "baseline", verdict: "keep", metric: 1 },
      { title: "raise the learning rate", verdict: "keep", metric: 0.95 },
      { title: "wider (adopted from host_b)", researcher: "swarm", verdict: "keep", metric: 0.9 },
      { title: "deeper", verdict: "discard", metric: 0.97 },
    ]);
    const summary = summarize(root, ledger, ledger.runById(run.id)!);
    const report = loadReportData(ledger, run).summary;
    const dashboard = runView(ledger, run);
    ledger.close();
    expect(summary).toMatchObject({ trials: 4, kept: 1, keepRate: 0.5, adopted: 1 });
    expect({ kept: summary.kept, keepRate: summary.keepRate }).toEqual({
      kept: report.kept,
      keepRate: report.keepRate,
    });
    expect(dashboard).toMatchObject({ trials: 4, experiments: 2, kept: 1 });
    expect(formatSummary(summary).split("\n")[1]).toBe(
      "  trials 4 · kept 1 (keep rate 50%) · crashed 0 · adopted 1",
    );
  });

  it("says the best is no better while only the baseline is kept, and shows a tiny gain's digits", () => {
    const bestLine = (metric: number) => {
      const root = tempDir();
      const { ledger, run } = fixtureLedger(root, [
        { title: "baseline", verdict: "keep", metric: 1 },
        { title: "deeper", verdict: metric === 1 ? "discard" : "keep", metric },
      ]);
      const summary = summarize(root, ledger, ledger.runById(run.id)!);
      ledger.close();
      return formatSummary(summary).split("\n")[2];
    };
    expect(bestLine(1)).toBe(
      "  val_bpb: baseline 1 → best 1 (trial 0, no better than the baseline)",
    );
    expect(bestLine(0.99999)).toBe(
      "  val_bpb: baseline 1 → best 0.99999 (trial 1, +0.0010% better)",
    );
    expect(bestLine(0.9)).toBe("  val_bpb: baseline 1 → best 0.9 (trial 1, +10.00% better)");
  });

  it("counts a crash of an adopted head among the adoptions, not as this run's crash", () => {
    const root = tempDir();
    const { ledger, run } = fixtureLedger(root, [
      { title: "baseline", verdict: "keep", metric: 1 },
      { title: "wider (adopted from host_b)", researcher: "swarm", verdict: "crash", metric: null },
      { title: "deeper", verdict: "crash", metric: null },
    ]);
    const summary = summarize(root, ledger, ledger.runById(run.id)!);
    const dashboard = runView(ledger, run);
    ledger.close();
    expect(summary).toMatchObject({ crashed: 1, adopted: 1 });
    expect(dashboard).toMatchObject({ crashed: 1 });
  });

  it("says that no experiment ran, and what was kept, when only the baseline ran", () => {
    const root = tempDir();
    const { ledger, run } = fixtureLedger(root, [
      { title: "baseline", verdict: "keep", metric: 1 },
    ]);
    const text = formatKept(loadReportData(ledger, run));
    ledger.close();
    expect(text.split("\n")).toEqual([
      "no experiment ran; kept:",
      "  #0    val_bpb 1       baseline",
    ]);
  });

  it("says why a report could not be written, without throwing", async () => {
    const root = tempDir();
    fixtureLedger(root).ledger.close();
    // A folder where the report file should go: the rename fails.
    mkdirSync(join(root, ".autoresearch/runs/nov27/report.html"), { recursive: true });
    const out = capture();
    const err = capture();
    await printReportAfterRun(root, "nov27", out, err);
    expect(out.text()).toBe("");
    expect(err.text()).toMatch(/^autoresearch: the report could not be written: .*report\.html/);
  });

  it("run prints what was kept and where the report is, and writes it", async () => {
    const root = quadraticTask();
    const result = await runCli(["run", "-C", root, "--tag", "t1", "--max-trials", "3"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/kept \d of 2 experiments:\n {2}#0 {4}score 4\.5 +baseline\n/);
    const html = join(root, ".autoresearch/runs/t1/report.html");
    expect(result.stdout).toContain(`report:   ${html}`);
    expect(result.stdout).toContain(
      `chart:    ${join(root, ".autoresearch/runs/t1/progress.png")}`,
    );
    expect(existsSync(html)).toBe(true);
  });
});
