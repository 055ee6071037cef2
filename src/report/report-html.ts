import { formatSeconds } from "../util/units.js";
import type { ReportData } from "./data.js";
import type { TransferTable } from "./data-types.js";
import {
  BASE_CSS,
  escapeHtml,
  factRows,
  fmtNumber,
  fmtPercent,
  fmtSigned,
  fmtTime,
  renderDiff,
} from "./html.js";
import { slotUsage } from "./slots.js";

export interface ReportCharts {
  progress: string;
  timeline: string | null;
}

// The report has no script at all; the policy makes sure nothing in it can load or run one.
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/** Hours with two decimals from an hour on, "3m41s" below. */
const duration = (ms: number) =>
  ms >= 3_600_000 ? `${(ms / 3_600_000).toFixed(2)} h` : formatSeconds(ms / 1000);

/** Inline SVG needs no namespace declarations in HTML; dropping them leaves no URL in the file. */
const inlineSvg = (svg: string) => svg.replace(/\s+xmlns(:\w+)?="[^"]*"/g, "");

/** Three significant digits: a short run's 0.003 GPU-hours is not 0.00. */
export const hours = (h: number) => (h >= 10 ? h.toFixed(1) : String(Number(h.toPrecision(3))));

/** The whole report as one self-contained HTML file: no script, no external request. */
export function renderReportHtml(data: ReportData, charts: ReportCharts): string {
  const { run } = data;
  const sections = [
    `<h1>Run ${escapeHtml(run.tag)} <span class="muted">· ${escapeHtml(run.taskName)}</span></h1>`,
    `<p class="muted">${escapeHtml(run.status)}${run.stopReason ? ` (${escapeHtml(run.stopReason)})` : ""} · researcher ${escapeHtml(run.researcher)} · judge ${escapeHtml(run.judge)} · generated ${escapeHtml(fmtTime(data.generatedAt))} UTC</p>`,
    `<div class="chart">${inlineSvg(charts.progress)}</div>`,
    summarySection(data),
    improvementsSection(data),
    slotsSection(data, charts.timeline),
    heldOutSection(data),
    transferSection(data.transfer),
  ];
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${CSP}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>autoresearch · ${escapeHtml(run.tag)}</title>`,
    `<style>${BASE_CSS}</style></head><body><main>`,
    ...sections.filter(Boolean),
    "</main></body></html>",
    "",
  ].join("\n");
}

function summarySection(data: ReportData): string {
  const s = data.summary;
  const m = data.metric.name;
  return `<h2>Summary</h2><table class="facts">${factRows([
    [`best ${m}`, s.best === null ? "—" : `${fmtNumber(s.best)} (trial ${s.bestTrial})`],
    [`baseline ${m}`, fmtNumber(s.baseline)],
    [
      "improvement",
      s.totalImprovement === null
        ? "—"
        : `${fmtSigned(s.totalImprovement)} (${fmtPercent(s.relativeImprovement, 2)}), ${data.metric.goal === "minimize" ? "lower" : "higher"} is better`,
    ],
    ["experiments", `${s.experiments} (${s.trials} trials recorded, the baseline included)`],
    ["kept", `${s.kept} (keep rate ${fmtPercent(s.keepRate)})`],
    ["crashed", `${s.crashed} (crash rate ${fmtPercent(s.crashRate)})`],
    ["trials per keep", s.trialsPerKeep === null ? "—" : s.trialsPerKeep.toFixed(1)],
    ["noise floor", s.noiseFloor === null ? null : fmtNumber(s.noiseFloor)],
    ["replicate time", s.replicateHours > 0 ? duration(s.replicateHours * 3_600_000) : null],
    ["GPU-hours", s.gpuHours === null ? null : hours(s.gpuHours)],
    ["LLM cost", s.llmCostUsd === null ? null : `$${s.llmCostUsd.toFixed(2)}`],
  ])}</table>`;
}

function improvementsSection(data: ReportData): string {
  if (data.improvements.length === 0)
    return '<h2>Kept improvements</h2><p class="muted">None yet.</p>';
  const rows = data.improvements
    .map(
      (k, i) =>
        `<tr><td class="num">${i + 1}</td><td class="num">#${k.n}</td><td>${escapeHtml(k.title)}</td><td class="num">${fmtNumber(k.metric)}</td><td class="num">${fmtSigned(k.delta)}</td><td class="num">${fmtPercent(k.relative, 2)}</td><td class="num">${k.effort}</td></tr>`,
    )
    .join("\n");
  const details = data.improvements
    .map(
      (k) =>
        `<details><summary>#${k.n} ${escapeHtml(k.title)} <span class="muted">${fmtNumber(k.parentMetric)} → ${fmtNumber(k.metric)}${k.commit ? ` · ${escapeHtml(k.commit.slice(0, 10))}` : ""}</span></summary>${k.hypothesis ? `<p>${escapeHtml(k.hypothesis)}</p>` : ""}${k.diff ? renderDiff(k.diff) : '<p class="muted">No diff recorded.</p>'}</details>`,
    )
    .join("\n");
  return `<h2>Kept improvements</h2>
<p class="muted">Ranked by the gain over their parent's ${escapeHtml(data.metric.name)}. "Trials" counts the experiments since the previous keep, this one included: the effort the improvement took.</p>
<table><thead><tr><th class="num">rank</th><th class="num">trial</th><th>title</th><th class="num">${escapeHtml(data.metric.name)}</th><th class="num">gain</th><th class="num">relative</th><th class="num">trials</th></tr></thead><tbody>
${rows}
</tbody></table>
<h2>Diffs of the kept changes</h2>
${details}`;
}

function slotsSection(data: ReportData, timeline: string | null): string {
  if (!timeline) return "";
  const rows = slotUsage(data.slots, data.sessions)
    .map(
      (u) =>
        `<tr><td>${escapeHtml(u.slot)}</td><td class="num">${u.replicates}</td><td class="num">${duration(u.busyMs)}</td><td class="num">${fmtPercent(u.utilisation)}</td></tr>`,
    )
    .join("\n");
  return `<h2>Slots</h2><div class="chart">${inlineSvg(timeline)}</div>
<table><thead><tr><th>slot</th><th class="num">replicates</th><th class="num">busy</th><th class="num">busy share of the run</th></tr></thead><tbody>
${rows}
</tbody></table>`;
}

function heldOutSection(data: ReportData): string {
  if (data.heldOut.length === 0) return "";
  const rows = data.heldOut
    .map(
      (h) =>
        `<tr${h.diverged ? ' class="diverged"' : ""}><td class="num">#${h.n}</td><td>${escapeHtml(h.title)}</td><td class="num">${fmtNumber(h.searchMetric)}</td><td class="num">${fmtNumber(h.heldOutMetric)}</td><td>${h.diverged ? "worse while the search metric improved" : ""}</td></tr>`,
    )
    .join("\n");
  return `<h2>Held-out checks</h2><table><thead><tr><th class="num">trial</th><th>title</th><th class="num">search</th><th class="num">held-out</th><th></th></tr></thead><tbody>
${rows}
</tbody></table>`;
}

/** The transfer tables in words, as the terminal prints them; nothing when there are none. */
export function transferSection(tables: TransferTable[]): string {
  if (tables.length === 0) return "";
  return `<h2>Transfer up the scale ladder</h2>${tables
    .map(
      (t) =>
        `<h3>${escapeHtml(t.title)}</h3><table><thead><tr><th></th>${t.columns.map((c) => `<th class="num">${escapeHtml(c)}</th>`).join("")}<th>transfers</th></tr></thead><tbody>${t.rows
          .map(
            (r) =>
              `<tr><td>${escapeHtml(r.label)}</td>${r.values.map((v) => `<td class="num">${fmtNumber(v)}</td>`).join("")}<td>${escapeHtml(r.transfers ?? "")}</td></tr>`,
          )
          .join("\n")}</tbody></table>${t.notes.map((n) => `<p>${escapeHtml(n)}</p>`).join("")}`,
    )
    .join("\n")}`;
}
