import { closeSync, existsSync, fstatSync, openSync, readSync } from "node:fs";
import { resolve, sep } from "node:path";
import type { Ledger } from "../../ledger/ledger.js";
import type { ReplicateRow, RunRow, TrialRow } from "../../ledger/types.js";
import { improvement } from "../../metrics/compare.js";
import { paths } from "../../workspace/layout.js";
import { readDiff } from "../data.js";
import { escapeHtml, factRows, fmtNumber, fmtSigned, fmtTime, renderDiff } from "../html.js";
import { layout } from "./pages.js";

const TAIL_BYTES = 8192;

/**
 * The end of a replicate's log while it runs (the ledger keeps a tail only once it is
 * done). Only files inside the run's own folder are read, whatever the ledger says.
 */
function liveTail(root: string, tag: string, logPath: string): string | null {
  const file = resolve(logPath);
  if (!file.startsWith(resolve(paths.run(root, tag)) + sep) || !existsSync(file)) return null;
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString("utf8");
  } finally {
    closeSync(fd);
  }
}

const seconds = (ms: number | null) => (ms === null ? null : `${(ms / 1000).toFixed(1)} s`);

function facts(run: RunRow, t: TrialRow): string {
  const gain =
    t.metric !== null && t.incumbentMetric !== null
      ? improvement(t.metric, t.incumbentMetric, run.goal)
      : null;
  return factRows([
    ["verdict", t.verdict ?? t.state],
    ["reason", t.reason],
    [run.metric, fmtNumber(t.metric)],
    ["to beat", t.baseline ? null : fmtNumber(t.incumbentMetric)],
    ["gain", gain === null ? null : fmtSigned(gain)],
    ["researcher", t.researcher],
    ["commit", t.commit],
    ["parent", t.parentCommit],
    ["lines", t.linesAdded === null ? null : `+${t.linesAdded} −${t.linesRemoved ?? 0}`],
    ["proposing", seconds(t.proposeMs)],
    ["running", seconds(t.runMs)],
    ["started", `${fmtTime(t.createdAt)} UTC`],
    ["finished", t.finishedAt === null ? null : `${fmtTime(t.finishedAt)} UTC`],
  ]);
}

function replicatesTable(reps: ReplicateRow[]): string {
  if (reps.length === 0) return '<p class="muted">No replicate has run.</p>';
  const rows = reps
    .map(
      (r) =>
        `<tr><td class="num">${r.idx}</td><td class="num">${r.seed}</td><td>${escapeHtml(r.slot ?? "")}</td><td>${escapeHtml(r.outcome ?? r.state)}</td><td class="num">${fmtNumber(r.metric)}</td><td class="num">${r.exitCode ?? ""}</td><td>${escapeHtml(r.signal ?? "")}</td><td class="num">${escapeHtml(seconds(r.durationMs) ?? "")}</td><td>${escapeHtml(r.reason ?? "")}</td></tr>`,
    )
    .join("\n");
  return `<table><thead><tr><th class="num">#</th><th class="num">seed</th><th>slot</th><th>outcome</th><th class="num">metric</th><th class="num">exit</th><th>signal</th><th class="num">time</th><th>reason</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** One trial: what was proposed and why, the diff, the metrics, the replicates and their logs. */
export function trialPage(ledger: Ledger, root: string, run: RunRow, t: TrialRow): string {
  const reps = ledger.replicates(t.id);
  const metrics = Object.entries(t.metrics);
  const diff = t.baseline ? null : readDiff(root, run.tag, t.n);
  const logs = reps
    .map((r) => {
      const tail = r.logTail ?? (r.state === "running" ? liveTail(root, run.tag, r.logPath) : null);
      return tail === null
        ? ""
        : `<h3>replicate ${r.idx}${r.state === "running" ? " (running)" : ""}</h3><pre class="log">${escapeHtml(tail)}</pre>`;
    })
    .join("\n");
  const verdict = t.verdict ?? t.state;
  // Where the page's live script starts following the run: only this trial can change it.
  const after = ledger.db
    .prepare("SELECT COALESCE(MAX(id), 0) AS id FROM trials WHERE run_id = ?")
    .get(run.id) as { id: number };
  const runHref = `/runs/${encodeURIComponent(run.tag)}`;
  return layout(
    `#${t.n} ${t.title ?? ""}`,
    `<nav><a href="/">runs</a> / <a href="${runHref}">${escapeHtml(run.tag)}</a> / #${t.n}</nav>
<h1 id="trial" data-run="${escapeHtml(run.tag)}" data-trial="${t.n}" data-id="${t.id}" data-after="${after.id}" data-state="${escapeHtml(t.state)}">#${t.n} <span class="title">${escapeHtml(t.title ?? (t.baseline ? "baseline" : "(proposing)"))}</span> <span class="verdict v-${escapeHtml(verdict)}">${escapeHtml(verdict)}</span></h1>
${t.hypothesis ? `<p class="hypothesis">${escapeHtml(t.hypothesis)}</p>` : ""}
<table class="facts">${facts(run, t)}</table>
<h2>Diff</h2>
${diff ? renderDiff(diff) : `<p class="muted">${t.baseline ? "The baseline is the unchanged code." : "No diff recorded."}</p>`}
${metrics.length ? `<h2>Metrics</h2><table class="facts">${factRows(metrics.map(([k, v]) => [k, fmtNumber(v)]))}</table>` : ""}
<h2>Replicates</h2>
${replicatesTable(reps)}
${logs ? `<h2>Log tail</h2>${logs}` : ""}`,
  );
}
