import type { TopLevelSpec } from "vega-lite";
import { improvement } from "../metrics/compare.js";
import type { Goal } from "../metrics/spec.js";
import type { ReportData, TrialPoint } from "./data.js";
import { fmtNumber, fmtPercentChange } from "./html.js";

const KEPT = "#1a7f37";
const GREY = "#8c959f";
const CRASH = "#cf222e";
/** A filled ✕ as an SVG path in the unit square: Vega's own "cross" is a plus. */
const X_SHAPE =
  "M-1,-0.6L-0.6,-1L0,-0.4L0.6,-1L1,-0.6L0.4,0L1,0.6L0.6,1L0,0.4L-0.6,1L-1,0.6L-0.4,0Z";
const LABEL_CHARS = 32;
const MAX_LABELS = 40;
/** The labels' slope in degrees, and the room a line of their text takes in pixels. */
const LABEL_ANGLE = 30;
const LINE_PX = 14;
const CHAR_PX = 6;
/** Outliers whose values are written beside them, while there are no more than this. */
const MAX_OUTLIER_VALUES = 12;

/** "N experiments, K kept improvements": the progress chart's title. */
export function progressTitle(data: ReportData): string {
  const { experiments, kept } = data.summary;
  return `${experiments} experiment${experiments === 1 ? "" : "s"}, ${kept} kept improvement${kept === 1 ? "" : "s"}`;
}

/** "val_bpb 0.9979 → 0.95846 (3.95% better)", or nothing before there is a best. */
function subtitle(data: ReportData): string {
  const { baseline, best, relativeImprovement } = data.summary;
  if (baseline === null || best === null) return "";
  const change =
    relativeImprovement === null || relativeImprovement === 0
      ? ""
      : ` (${fmtPercentChange(relativeImprovement)} better)`;
  return `${data.metric.name} ${fmtNumber(baseline)} → ${fmtNumber(best)}${change}`;
}

const shorten = (text: string) =>
  text.length > LABEL_CHARS ? `${text.slice(0, LABEL_CHARS - 1)}…` : text;
const labelOf = (t: TrialPoint) => shorten(t.baseline ? "baseline" : t.title);

/** Finished experiments by how the chart draws them; interrupted trials were none. */
function classify(data: ReportData) {
  const done = data.trials.filter((t) => t.state === "done" && t.verdict !== "interrupted");
  const measured = (t: TrialPoint) => t.metric !== null && Number.isFinite(t.metric);
  const kept = done.filter((t) => t.verdict === "keep" && measured(t));
  const discarded = done.filter((t) => t.verdict === "discard" && measured(t));
  // Crashes, timeouts, invalid and tampered results: nothing worth plotting as a value.
  const failed = done.filter(
    (t) => !measured(t) || (t.verdict !== "keep" && t.verdict !== "discard"),
  );
  return { kept, discarded, failed };
}

const extent = (xs: number[]): [number, number] => [
  xs.reduce((a, b) => Math.min(a, b)),
  xs.reduce((a, b) => Math.max(a, b)),
];

/** The value below which a fraction `q` of `sorted` lies, interpolated between neighbours. */
function quantile(sorted: number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const i = Math.floor(at);
  return sorted[i]! + (sorted[Math.min(i + 1, sorted.length - 1)]! - sorted[i]!) * (at - i);
}

/**
 * The y-range: every kept value, so that the running best is always in view, and the
 * bulk of the discards. Discards beyond Tukey's fences (1.5 interquartile ranges past the
 * quartiles) are outliers; so are those more than three times the kept values' spread
 * past them on the worse side, so that the path from baseline to best fills at least a
 * quarter of the height. Outliers are drawn on the edge rather than stretching the axis.
 */
export function yDomain(data: ReportData): [number, number] | null {
  const { kept, discarded } = classify(data);
  const minimize = data.metric.goal === "minimize";
  const keptY = kept.map((t) => t.metric!);
  let rest = discarded.map((t) => t.metric!).sort((a, b) => a - b);
  if (rest.length >= 4) {
    const [q1, q3] = [quantile(rest, 0.25), quantile(rest, 0.75)];
    const fence = 1.5 * (q3 - q1);
    rest = rest.filter((y) => y >= q1 - fence && y <= q3 + fence);
  }
  if (keptY.length) {
    const [klo, khi] = extent(keptY);
    const reach = 3 * (khi - klo);
    if (reach > 0) rest = rest.filter((y) => (minimize ? y <= khi + reach : y >= klo - reach));
  }
  const all = [...keptY, ...rest];
  if (all.length === 0) return null;
  const [lo, hi] = extent(all);
  const span = hi - lo || Math.abs(hi) * 0.02 || 1;
  // More room on the side the labels are written towards: up when minimizing.
  return minimize ? [lo - span * 0.05, hi + span * 0.15] : [lo - span * 0.15, hi + span * 0.05];
}

/**
 * The kept trials that get a label: the baseline, then the largest gains first, each
 * only where its slanted text would not run over a label already placed (`at` gives a
 * trial's place in pixels). The others stay unnamed dots on the line.
 */
function labelled(
  kept: TrialPoint[],
  goal: Goal,
  at: (t: TrialPoint) => [number, number],
): TrialPoint[] {
  const gain = (t: TrialPoint) =>
    t.baseline
      ? Number.POSITIVE_INFINITY
      : improvement(t.metric!, t.parentMetric ?? t.metric!, goal);
  const rad = (LABEL_ANGLE * Math.PI) / 180;
  // Text runs up and to the right when minimizing, down and to the right when maximizing.
  const [ux, uy] = [Math.cos(rad), goal === "minimize" ? -Math.sin(rad) : Math.sin(rad)];
  const placed: { x: number; y: number; length: number }[] = [];
  const chosen = new Set<TrialPoint>();
  for (const t of [...kept].sort((a, b) => gain(b) - gain(a))) {
    if (chosen.size === MAX_LABELS) break;
    const [x, y] = at(t);
    const length = labelOf(t).length * CHAR_PX;
    const clear = placed.every((q) => {
      const [dx, dy] = [x - q.x, y - q.y];
      const along = dx * ux + dy * uy;
      return Math.abs(dx * uy - dy * ux) >= LINE_PX || along >= q.length || along + length <= 0;
    });
    if (!clear) continue;
    placed.push({ x, y, length });
    chosen.add(t);
  }
  return kept.filter((t) => chosen.has(t));
}

type Point = { n: number; y: number; kind: string };
type Layer = Extract<TopLevelSpec, { layer: unknown }>["layer"][number];

/** Small text beside marks, above or below them. */
function notes(
  values: { n: number; y: number; text: string }[],
  up: boolean,
  style: object,
): Layer {
  return {
    data: { values },
    mark: { type: "text", baseline: up ? "bottom" : "top", fontSize: 9, ...style },
    encoding: { text: { field: "text", type: "nominal" } },
  };
}

/**
 * Colour and shape by a point's kind, with one legend for all layers: each point names
 * its kind, and `looks` gives each kind its colour and shape.
 */
function kindEncoding(looks: [kind: string, color: string, shape: string][]) {
  const domain = looks.map(([kind]) => kind);
  return {
    color: {
      field: "kind",
      type: "nominal" as const,
      title: null,
      scale: { domain, range: looks.map(([, color]) => color) },
      legend: {
        orient: "top" as const,
        direction: "horizontal" as const,
        columnPadding: 18,
        symbolOpacity: 1,
        symbolStrokeWidth: 2,
        // No cut: without a canvas Vega overestimates the labels' widths.
        labelLimit: 0,
      },
    },
    shape: {
      field: "kind",
      type: "nominal" as const,
      title: null,
      scale: { domain, range: looks.map(([, , shape]) => shape) },
    },
  };
}

/**
 * The progress chart, after karpathy/autoresearch's: every experiment a faint grey dot,
 * kept ones green and named on a step line of the running best, crashes as red crosses
 * on the worse edge, and outliers as triangles on the edge they lie beyond, with their
 * values, so that the y-range shows where the progress happens.
 */
export function progressSpec(data: ReportData, width = 900, height = 440): TopLevelSpec {
  const { kept, discarded, failed } = classify(data);
  const minimize = data.metric.goal === "minimize";
  const domain = yDomain(data);
  const [bottom, top] = domain ?? [0, 1];
  const side = (t: TrialPoint) => (!domain ? 0 : t.metric! > top ? 1 : t.metric! < bottom ? -1 : 0);
  const inside = discarded.filter((t) => side(t) === 0);
  const above = discarded.filter((t) => side(t) === 1);
  const below = discarded.filter((t) => side(t) === -1);
  const lastN = data.trials.at(-1)?.n ?? 0;
  const padX = Math.max(0.5, lastN * 0.01);
  const [x0, x1] = [-padX, Math.max(1, lastN) + padX];

  const kinds = {
    kept: "kept",
    best: "running best",
    discarded: `discarded (${inside.length})`,
    outside: `off the scale (${above.length + below.length})`,
    // Not "crashed": invalid and tampered trials are drawn here too, and the summary's
    // crash count beside the chart holds crashes and timeouts only.
    crashed: `failed (${failed.length})`,
  };
  const points = (trials: TrialPoint[], kind: string, y?: number): Point[] =>
    trials.map((t) => ({ n: t.n, y: y ?? t.metric!, kind }));
  const steps = points(kept, kinds.best);
  // The running best goes on to the last trial.
  if (steps.length && steps.at(-1)!.n < lastN) steps.push({ ...steps.at(-1)!, n: lastN });
  const at = (t: TrialPoint): [number, number] => [
    ((t.n - x0) / (x1 - x0)) * width,
    ((top - t.metric!) / (top - bottom)) * height,
  ];
  const labels = labelled(kept, data.metric.goal, at).map((t) => ({
    n: t.n,
    y: t.metric!,
    text: labelOf(t),
  }));
  // Outliers' values, while they are few, and where one would not overwrite the last.
  const outlierValues = (trials: TrialPoint[], y: number) => {
    if (above.length + below.length > MAX_OUTLIER_VALUES) return [];
    let last = Number.NEGATIVE_INFINITY;
    return trials.flatMap((t) => {
      const [x] = at(t);
      if (x - last < 8 * CHAR_PX) return [];
      last = x;
      return [{ n: t.n, y, text: fmtNumber(t.metric, 3) }];
    });
  };

  const looks: [string, string, string][] = [
    [kinds.kept, KEPT, "circle"],
    [kinds.best, KEPT, "stroke"],
  ];
  if (inside.length) looks.push([kinds.discarded, GREY, "circle"]);
  if (above.length + below.length) looks.push([kinds.outside, GREY, "triangle-up"]);
  if (failed.length) looks.push([kinds.crashed, CRASH, X_SHAPE]);
  const encoding = kindEncoding(looks);
  // A short run's few marks may be larger than a long run's many; a very long run's
  // crashes must not merge into a red band.
  const size = lastN <= 60 ? 2 : lastN <= 1000 ? 1 : 0.4;
  const dots = (values: Point[], area: number, opacity: number, shape?: string): Layer => ({
    data: { values },
    mark: { type: "point", filled: true, size: area * size, opacity, ...(shape ? { shape } : {}) },
    encoding: shape ? { color: encoding.color } : encoding,
  });

  return {
    width,
    height,
    background: "white",
    padding: 12,
    title: { text: progressTitle(data), subtitle: subtitle(data), fontSize: 16, anchor: "start" },
    encoding: {
      x: {
        field: "n",
        type: "quantitative",
        title: "trial number",
        scale: { domain: [x0, x1], nice: false },
        axis: { format: "d", tickMinStep: 1, grid: false },
      },
      y: {
        field: "y",
        type: "quantitative",
        title: `${data.metric.name} (${minimize ? "lower" : "higher"} is better)`,
        scale: domain ? { domain, zero: false, nice: false } : { zero: false },
      },
    },
    layer: [
      dots(points(inside, kinds.discarded), 30, 0.55),
      dots(points(above, kinds.outside, top), 40, 0.7),
      dots(points(below, kinds.outside, bottom), 40, 0.7, "triangle-down"),
      notes(outlierValues(above, top), false, { dy: 6, color: "#59636e" }),
      notes(outlierValues(below, bottom), true, { dy: -6, color: "#59636e" }),
      // A crash has no value: it sits on the worse edge, where it cannot pass for progress.
      dots(points(failed, kinds.crashed, minimize ? top : bottom), 30, 0.75),
      {
        data: { values: steps },
        mark: { type: "line", interpolate: "step-after", strokeWidth: 2, opacity: 0.85 },
        encoding: { color: encoding.color },
      },
      {
        data: { values: points(kept, kinds.kept) },
        mark: {
          type: "point",
          filled: true,
          size: 60 * Math.max(1, size),
          opacity: 1,
          stroke: "white",
        },
        encoding,
      },
      notes(labels, minimize, {
        align: "left",
        dx: 4,
        dy: minimize ? -4 : 4,
        angle: minimize ? 360 - LABEL_ANGLE : LABEL_ANGLE,
        fontSize: 10,
        color: "#24292f",
      }),
    ],
    config: {
      view: { stroke: "#d0d7de" },
      axis: { gridColor: "#eaeef2" },
      legend: { labelFontSize: 11, symbolSize: 70 },
    },
  };
}
