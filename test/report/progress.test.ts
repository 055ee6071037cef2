import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TopLevelSpec } from "vega-lite";
import { describe, expect, it } from "vitest";
import { loadReportData, type ReportData } from "../../src/report/data.js";
import { progressSpec } from "../../src/report/progress.js";
import { renderSvg, svgToPng } from "../../src/report/render.js";
import { ROOT, tempDir } from "../helpers.js";
import { DEMO, longHistory } from "./chart-fixtures.js";
import { pngSize } from "./checks.js";
import { type FixtureRun, type FixtureTrial, fixtureLedger } from "./fixture.js";

/**
 * The progress chart as a reader sees it, checked on what Vega drew: each mark's
 * aria-label names its values, the kind of point and a label's text. With
 * UPDATE_DOCS=1 the pictures named `doc` are written to docs/ as well.
 */
async function draw(trials: FixtureTrial[], run: FixtureRun, doc?: string) {
  const { ledger, run: row } = fixtureLedger(tempDir(), trials, run);
  const data = loadReportData(ledger, row);
  ledger.close();
  const spec = progressSpec(data);
  const svg = await renderSvg(spec);
  const file = join(tempDir(), "progress.png");
  writeFileSync(file, svgToPng(svg));
  if (doc && process.env.UPDATE_DOCS === "1") copyFileSync(file, join(ROOT, "docs", doc));
  return { data, spec, svg, file };
}

const ENTITIES: Record<string, string> = { quot: '"', amp: "&", lt: "<", gt: ">", "#39": "'" };
const decode = (text: string) => text.replace(/&(quot|amp|lt|gt|#39);/g, (_, e) => ENTITIES[e]!);

/** The marks of one kind ("point", "text mark") as the fields of their aria-labels. */
function marks(svg: string, role: string): Record<string, string>[] {
  const pattern = new RegExp(
    `aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="${role}"`,
    "g",
  );
  return [...svg.matchAll(pattern)].map((m) =>
    Object.fromEntries(
      decode(m[1]!)
        .split("; ")
        .map((field) => [
          field.slice(0, field.indexOf(": ")),
          field.slice(field.indexOf(": ") + 2),
        ]),
    ),
  );
}

/** The text of labels, without the numbers written beside outliers. */
const labelTexts = (svg: string) =>
  marks(svg, "text mark")
    .map((t) => t.text!)
    .filter((t) => !/^-?[\d.]+$/.test(t));

const legendLabels = (svg: string) =>
  [...svg.matchAll(/<g class="mark-text role-legend-label"[^>]*><text[^>]*>([^<]*)<\/text>/g)].map(
    (m) => decode(m[1]!),
  );

/** The y-scale's domain as the spec sets it (a layered spec with a shared y encoding). */
function yDomainOf(spec: TopLevelSpec): [number, number] {
  const shared = spec as unknown as { encoding: { y: { scale: { domain: [number, number] } } } };
  return shared.encoding.y.scale.domain;
}

const metrics = (data: ReportData, verdict: string) =>
  data.trials.filter((t) => t.verdict === verdict && t.metric !== null).map((t) => t.metric!);

describe("the progress chart", () => {
  it("shows the demo's eight trials: the discards in view, a legend, the kept ones named", async () => {
    const { data, spec, svg, file } = await draw(DEMO, { metric: "val_loss" }, "progress-demo.png");
    const [lo, hi] = yDomainOf(spec);
    // The running best (0.290486 → 0.224998) with room around it, and the discards' bulk
    // (0.25 to 0.37) too.
    expect(lo).toBeLessThan(0.224998 - 0.002);
    expect(hi).toBeGreaterThan(0.37);
    const discards = metrics(data, "discard");
    expect(discards.filter((y) => y >= lo && y <= hi).length).toBeGreaterThanOrEqual(5);

    const points = marks(svg, "point");
    const kinds = points.map((p) => p.kind);
    expect(kinds.filter((k) => k === "discarded (5)")).toHaveLength(5);
    // 0.450364 is drawn on the top edge, marked as off the scale, with its value beside it.
    const off = points.filter((p) => p.kind === "off the scale (1)");
    expect(off.map((p) => Number(p["trial number"]))).toEqual([2]);
    expect(marks(svg, "text mark").map((t) => t.text)).toContain("0.45");
    expect(kinds.filter((k) => k === "kept")).toHaveLength(2);
    expect(svg).toContain('class="mark-group role-legend"');
    expect(legendLabels(svg)).toEqual([
      "kept",
      "running best",
      "discarded (5)",
      "off the scale (1)",
    ]);
    // Every kept trial is named.
    expect(labelTexts(svg)).toEqual(["baseline", "BATCH_SIZE 32 → 16"]);
    expect(svg).toContain(">trial number</text>");
    expect(svg).toContain(">val_loss (lower is better)</text>");
    expect(svg).toContain(">7 experiments, 1 kept improvement</text>");
    expect(pngSize(file).width).toBeGreaterThan(1600);
  });

  it("shows a 200-trial run: the range follows the running best; outliers and crashes sit on the edge", async () => {
    const trials = longHistory(200);
    const { data, spec, svg } = await draw(trials, { metric: "val_bpb" }, "progress-200.png");
    const [lo, hi] = yDomainOf(spec);
    const { baseline, best } = data.summary;
    const span = baseline! - best!;
    expect(lo).toBeLessThan(best! - span * 0.02);
    expect(hi).toBeGreaterThan(baseline! + span * 0.02);
    // Far outliers (diverged runs, 30% or more above the baseline) do not stretch the axis.
    const discards = metrics(data, "discard");
    const far = discards.filter((y) => y > baseline! * 1.25);
    expect(far.length).toBeGreaterThanOrEqual(3);
    expect(hi).toBeLessThan(baseline! + span);
    expect(discards.filter((y) => y >= lo && y <= hi).length).toBeGreaterThan(
      discards.length * 0.9,
    );

    const points = marks(svg, "point");
    const of = (prefix: string) => points.filter((p) => p.kind?.startsWith(prefix));
    // On the top edge (Vega writes values to seven significant digits).
    const onTop = (p: Record<string, string>) =>
      Math.abs(Number(p["val_bpb (lower is better)"]) - hi) < 1e-6;
    expect(of("discarded").length + of("off the scale").length).toBe(discards.length);
    expect(of("off the scale").every(onTop)).toBe(true);
    // Crashes and timeouts: on the worse edge, one mark each.
    const failed = trials.filter((t) => t.metric === null).length;
    expect(failed).toBeGreaterThanOrEqual(4);
    expect(of("failed").length).toBe(failed);
    expect(of("failed").every(onTop)).toBe(true);
    expect(legendLabels(svg)).toEqual([
      "kept",
      "running best",
      `discarded (${of("discarded").length})`,
      `off the scale (${of("off the scale").length})`,
      `failed (${failed})`,
    ]);

    // Most kept trials are named, with titles cut short.
    const kept = of("kept");
    expect(kept.length).toBe(data.summary.kept + 1);
    const labels = labelTexts(svg);
    expect(labels.length).toBeGreaterThanOrEqual(kept.length * 0.7);
    expect(labels[0]).toBe("baseline");
    expect(labels.every((t) => t.length <= 32)).toBe(true);
  });

  it("keeps a maximized metric's far misses off the axis too", async () => {
    const trials: FixtureTrial[] = [
      { title: "baseline", verdict: "keep", metric: 50 },
      { title: `better: ${"a long explanation ".repeat(5)}`, verdict: "keep", metric: 60 },
      { title: "worse", verdict: "discard", metric: 55 },
      { title: "broken", verdict: "discard", metric: -400 },
      { title: "crashed", verdict: "crash", metric: null },
    ];
    const { spec, svg } = await draw(trials, { metric: "accuracy", goal: "maximize" });
    const [lo, hi] = yDomainOf(spec);
    expect(lo).toBeGreaterThan(40);
    expect(lo).toBeLessThan(50);
    expect(hi).toBeGreaterThan(60);
    const points = marks(svg, "point");
    const crashed = points.filter((p) => p.kind === "failed (1)");
    expect(crashed).toHaveLength(1);
    expect(Number(crashed[0]!["accuracy (higher is better)"])).toBeCloseTo(lo, 4);
    expect(svg).toContain(">accuracy (higher is better)</text>");
    expect(labelTexts(svg)).toEqual(["baseline", "better: a long explanation a lo…"]);
  });
});
