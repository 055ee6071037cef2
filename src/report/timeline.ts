import type { TopLevelSpec } from "vega-lite";
import type { Verdict } from "../ledger/types.js";
import type { ReportData } from "./data.js";

/** Colours of verdicts (the dashboard's stylesheet uses the same). */
export const VERDICT_COLORS: Record<Verdict, string> = {
  keep: "#1a7f37",
  discard: "#8c959f",
  crash: "#cf222e",
  timeout: "#bc4c00",
  invalid: "#9a6700",
  tampered: "#8250df",
  interrupted: "#d4a72c",
};

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** The narrowest time axis: a run's first seconds still get ticks some seconds apart. */
const MIN_SPAN = MINUTE;
/** Tick steps a time axis may take, finest first. */
const STEPS = [1, 2, 5, 10, 15, 30]
  .map((s) => s * SECOND)
  .concat(
    [1, 2, 5, 10, 15, 30].map((m) => m * MINUTE),
    [1, 2, 3, 6, 12].map((h) => h * HOUR),
    [1, 2, 7, 14, 28].map((d) => d * DAY),
  );

/**
 * Ticks for a time axis from `start` to `end` (ms): at most `count`, at round UTC times,
 * with a label format fine enough that no two read the same. Left to itself, Vega labels
 * a span of a few seconds with milliseconds only (".500"), and a span of days with bare
 * hours that repeat.
 */
function timeTicks(
  start: number,
  end: number,
  count: number,
): { values: number[]; format: string } {
  const step = STEPS.find((s) => (end - start) / s <= count) ?? STEPS.at(-1)!;
  const values: number[] = [];
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) values.push(t);
  const format =
    step < MINUTE
      ? "%H:%M:%S"
      : step >= DAY
        ? "%b %d"
        : end - start > DAY
          ? "%b %d %H:%M"
          : "%H:%M";
  return { values, format };
}

/**
 * Which slot ran which replicate when; gaps between bars are idle slots. With `last`,
 * only the most recent replicates: a live view needs the present, not all of history.
 */
export function timelineSpec(data: ReportData, width = 900, last?: number): TopLevelSpec | null {
  if (data.slots.length === 0) return null;
  const now = Date.now();
  const spans = last === undefined ? data.slots : data.slots.slice(-last);
  const bars = spans.map((s) => ({
    slot: s.slot,
    n: s.n,
    start: s.startedAt,
    end: s.finishedAt ?? now,
    verdict: s.verdict ?? "running",
  }));
  const slots = new Set(bars.map((b) => b.slot)).size;
  const start = bars.reduce((a, b) => Math.min(a, b.start), Number.POSITIVE_INFINITY);
  const end = Math.max(
    bars.reduce((a, b) => Math.max(a, b.end), start),
    start + MIN_SPAN,
  );
  const ticks = timeTicks(start, end, Math.max(2, Math.floor(width / 110)));
  // The legend lists only the verdicts that occur, in the usual order.
  const present = new Set(bars.map((b) => b.verdict));
  const colors: [string, string][] = [...Object.entries(VERDICT_COLORS), ["running", "#0969da"]];
  const shown = colors.filter(([v]) => present.has(v));
  return {
    width,
    height: Math.max(40, slots * 28),
    background: "white",
    padding: 12,
    title: {
      text: "slots over time",
      subtitle: spans.length < data.slots.length ? `the last ${spans.length} replicates` : "",
      fontSize: 14,
      anchor: "start",
    },
    data: { values: bars },
    mark: { type: "bar", cornerRadius: 2, height: { band: 0.7 } },
    encoding: {
      x: {
        field: "start",
        type: "temporal",
        title: "time (UTC)",
        // A signal: Vega-Lite would otherwise merge a literal domain with a copy of itself.
        scale: { type: "utc", domain: { signal: `[${start}, ${end}]` }, nice: false },
        axis: { values: ticks.values, format: ticks.format },
      },
      x2: { field: "end" },
      y: { field: "slot", type: "nominal", title: null },
      color: {
        field: "verdict",
        type: "nominal",
        title: "verdict",
        scale: { domain: shown.map(([v]) => v), range: shown.map(([, c]) => c) },
      },
    },
    config: { view: { stroke: "#d0d7de" } },
  };
}
