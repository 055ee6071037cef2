import type { Ledger } from "../../ledger/ledger.js";
import type { RunRow } from "../../ledger/types.js";
import { transferTables } from "../data.js";
import { escapeHtml, fmtNumber, fmtTime } from "../html.js";
import { transferSection } from "../report-html.js";
import { type RunView, runView } from "./views.js";

/** A page of the dashboard: our markup around escaped text, one stylesheet, one script. */
export function layout(title: string, body: string): string {
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)} · autoresearch</title>`,
    '<link rel="stylesheet" href="/static/dashboard.css">',
    '<script src="/static/dashboard.js" defer></script>',
    `</head><body><main>${body}</main></body></html>`,
    "",
  ].join("\n");
}

const runHref = (tag: string) => `/runs/${encodeURIComponent(tag)}`;

function stateOf(v: RunView): string {
  return v.live ? "running now" : v.status === "running" ? "not running" : v.status;
}

/** The list of runs in the ledger. */
export function runsPage(ledger: Ledger, root: string, swarm = false): string {
  const rows = ledger
    .runs()
    .reverse()
    .map((run) => {
      const v = runView(ledger, run);
      return `<tr><td><a href="${runHref(run.tag)}">${escapeHtml(run.tag)}</a></td><td>${escapeHtml(run.taskName)}</td><td>${escapeHtml(stateOf(v))}</td><td class="num">${v.trials}</td><td class="num">${v.kept}</td><td>${escapeHtml(run.metric)}</td><td class="num">${fmtNumber(v.baseline)}</td><td class="num">${fmtNumber(v.best)}</td><td>${escapeHtml(run.researcher)}</td><td>${escapeHtml(fmtTime(run.createdAt))}</td></tr>`;
    })
    .join("\n");
  return layout(
    "runs",
    `<h1>Runs <span class="muted">· ${escapeHtml(root)}</span></h1>${swarm ? '\n<p><a href="/swarm">The swarm</a></p>' : ""}
<table><thead><tr><th>run</th><th>task</th><th>state</th><th class="num">trials</th><th class="num">kept</th><th>metric</th><th class="num">baseline</th><th class="num">best</th><th>researcher</th><th>started (UTC)</th></tr></thead>
<tbody>${rows || '<tr><td colspan="10" class="muted">No runs yet.</td></tr>'}</tbody></table>`,
  );
}

const STATS: [keyof RunView, string][] = [
  ["best", "best"],
  ["baseline", "baseline"],
  ["experiments", "experiments"],
  ["kept", "kept"],
  ["crashed", "crashed"],
  ["inFlight", "in flight"],
];

/**
 * A run: headline numbers, the charts, its promotions' transfer tables (as they are when
 * the page loads: a promotion takes minutes) and the live trial table. The script fills
 * the table first and only then asks for the charts, which take the server longer to draw.
 */
export function runPage(ledger: Ledger, run: RunRow): string {
  const v = runView(ledger, run);
  const stats = STATS.map(
    ([key, label]) =>
      `<div><b data-field="${key}">${escapeHtml(typeof v[key] === "number" || v[key] === null ? fmtNumber(v[key] as number | null) : v[key])}</b><span>${label}</span></div>`,
  ).join("");
  const filters = ["verdict", "researcher", "slot"]
    .map(
      (f) =>
        `<label>${f} <select data-filter="${f}"><option value="">all</option></select></label>`,
    )
    .join(" ");
  const columns: [string, string, string][] = [
    ["n", "#", "num"],
    ["title", "title", ""],
    ["verdict", "verdict", ""],
    ["metric", escapeHtml(run.metric), "num"],
    ["delta", "gain", "num"],
    ["researcher", "researcher", ""],
    ["slot", "slot", ""],
    ["seconds", "seconds", "num"],
    ["finishedAt", "finished (UTC)", ""],
  ];
  const head = columns
    .map(
      ([key, label, cls]) =>
        `<th data-key="${key}"${cls ? ` class="${cls}"` : ""} tabindex="0">${label}</th>`,
    )
    .join("");
  const base = runHref(run.tag);
  return layout(
    run.tag,
    `<nav><a href="/">runs</a> / ${escapeHtml(run.tag)}</nav>
<h1>Run ${escapeHtml(run.tag)} <span class="muted">· ${escapeHtml(run.taskName)} · ${escapeHtml(run.metric)}, ${run.goal === "minimize" ? "lower" : "higher"} is better</span> <span id="live" class="live">${escapeHtml(stateOf(v))}</span></h1>
<div class="stats" id="run" data-run="${escapeHtml(run.tag)}" data-goal="${escapeHtml(run.goal)}">${stats}</div>
<div class="chart"><img id="progress" data-src="${base}/progress.svg" alt="progress chart"></div>
<div class="chart"><img id="timeline" data-src="${base}/timeline.svg" alt="slot timeline"></div>
${transferSection(transferTables(ledger, run.id))}
<h2>Trials</h2>
<div class="filters">${filters} <span id="shown" class="muted"></span></div>
<table id="trials" class="trials"><thead><tr>${head}</tr></thead><tbody></tbody></table>
<p><button id="more" type="button" hidden>show more</button></p>`,
  );
}

/** An SVG that says there is nothing to draw yet (served as an image). */
export function placeholderSvg(text: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="900" height="40" viewBox="0 0 900 40"><text x="8" y="24" font-family="sans-serif" font-size="13" fill="#59636e">${escapeHtml(text)}</text></svg>`;
}
