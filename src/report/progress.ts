import type { TopLevelSpec } from "vega-lite";
import { improvement } from "../metrics/compare.js";
import type { Goal } from "../metrics/spec.js";
import type { ReportData, TrialPoint } from "./data.js";

const KEPT = "#1a7f37";
const LABEL_CHARS = 48;
const MAX_LABELS = 40;

/** "N experiments, K kept improvements": the progress chart's title. */
export function progressTitle(data: ReportData): string {
  const { experiments, kept } = data.summary;
  return `${experiments} experiment${experiments === 1 ? "" : "s"}, ${kept} kept improvement${kept === 1 ? "" : "s"}`;
}

const shorten = (text: string) =>
  text.length > LABEL_CHARS ? `${text.slice(0, LABEL_CHARS - 1)}…` : text;

/**
 * The y-range: from the best to just above the baseline, so that a few wild trials do
 * not flatten the part of the plot where progress happens.
 */
export function yDomain(data: ReportData, measured: number[]): [number, number] | null {
  const { baseline, best } = data.summary;
  const minimize = data.metric.goal === "minimize";
  let lo: number;
  let hi: number;
  if (baseline !== null && best !== null) {
    [lo, hi] = minimize ? [best, baseline] : [baseline, best];
  } else if (measured.length) {
    lo = measured.reduce((a, b) => Math.min(a, b));
    hi = measured.reduce((a, b) => Math.max(a, b));
  } else return null;
  const span = hi - lo || Math.abs(hi) * 0.02 || 1;
  // A little room under the best and a little more over the baseline, where the
  // near misses are.
  return minimize ? [lo - span * 0.05, hi + span * 0.12] : [lo - span * 0.12, hi + span * 0.05];
}

/**
 * The kept trials that get a label: all of them in a run of ordinary length; in a long
 * one the baseline and the largest gains, as more labels would only cover each other.
 */
function labelled(kept: TrialPoint[], goal: Goal): TrialPoint[] {
  if (kept.length <= MAX_LABELS) return kept;
  const gain = (t: TrialPoint) =>
    t.baseline
      ? Number.POSITIVE_INFINITY
      : improvement(t.metric!, t.parentMetric ?? t.metric!, goal);
  const chosen = new Set([...kept].sort((a, b) => gain(b) - gain(a)).slice(0, MAX_LABELS));
  return kept.filter((t) => chosen.has(t));
}

/** The progress chart: every measured trial faint, kept ones prominent and named, the running best. */
export function progressSpec(data: ReportData, width = 900, height = 440): TopLevelSpec {
  const done = data.trials.filter((t) => t.state === "done");
  const measured = done.filter(
    (t) => t.metric !== null && (t.verdict === "keep" || t.verdict === "discard"),
  );
  const keptTrials = measured.filter((t) => t.verdict === "keep");
  const kept = keptTrials.map((t) => ({ n: t.n, y: t.metric }));
  const labels = labelled(keptTrials, data.metric.goal).map((t) => ({
    n: t.n,
    y: t.metric,
    label: shorten(t.baseline ? "baseline" : t.title),
  }));
  const steps: { n: number; y: number }[] = [];
  let best: number | null = null;
  for (const t of done) {
    if (t.verdict === "keep" && t.metric !== null) best = t.metric;
    if (best !== null) steps.push({ n: t.n, y: best });
  }
  const domain = yDomain(
    data,
    measured.map((t) => t.metric!),
  );
  // Points beyond the range are drawn at its edge as triangles rather than clipped: the
  // reader sees that they exist, and the rasteriser cannot draw clipped groups that end
  // up empty.
  const inRange: { n: number; y: number }[] = [];
  const edge: { n: number; y: number; shape: string }[] = [];
  for (const t of measured) {
    const y = t.metric!;
    if (!domain || (y >= domain[0] && y <= domain[1])) inRange.push({ n: t.n, y });
    else if (y > domain[1]) edge.push({ n: t.n, y: domain[1], shape: "triangle-up" });
    else edge.push({ n: t.n, y: domain[0], shape: "triangle-down" });
  }
  const lastN = data.trials.at(-1)?.n ?? 0;
  return {
    width,
    height,
    background: "white",
    padding: 12,
    title: {
      text: progressTitle(data),
      subtitle: edge.length
        ? `${edge.length} trial${edge.length === 1 ? "" : "s"} beyond the range drawn as triangles at its edge`
        : "",
      fontSize: 16,
      anchor: "start",
    },
    encoding: {
      x: {
        field: "n",
        type: "quantitative",
        title: "trial",
        scale: { domain: [0, Math.max(1, lastN)], nice: false },
        axis: { format: "d", tickMinStep: 1 },
      },
      y: {
        field: "y",
        type: "quantitative",
        title: `${data.metric.name} (${data.metric.goal === "minimize" ? "lower" : "higher"} is better)`,
        scale: domain ? { domain, zero: false, nice: false } : { zero: false },
      },
    },
    layer: [
      {
        data: { values: inRange },
        mark: { type: "circle", size: 30, color: "#8c959f", opacity: 0.6 },
      },
      {
        data: { values: edge },
        mark: { type: "point", size: 45, filled: true, color: "#8c959f", opacity: 0.7 },
        encoding: { shape: { field: "shape", type: "nominal", scale: null } },
      },
      {
        data: { values: steps },
        mark: {
          type: "line",
          interpolate: "step-after",
          color: KEPT,
          strokeWidth: 2,
          opacity: 0.8,
        },
      },
      {
        data: { values: kept },
        mark: { type: "circle", size: 80, color: KEPT, opacity: 1, stroke: "white" },
      },
      {
        data: { values: labels },
        mark: {
          type: "text",
          align: "left",
          baseline: "bottom",
          dx: 5,
          dy: -5,
          angle: 340,
          fontSize: 10,
          color: "#24292f",
        },
        encoding: { text: { field: "label", type: "nominal" } },
      },
    ],
    config: { view: { stroke: "#d0d7de" }, axis: { gridColor: "#eaeef2" } },
  };
}
