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
      x: { field: "start", type: "temporal", title: null },
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
