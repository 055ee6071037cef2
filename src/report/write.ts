import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { paths } from "../workspace/layout.js";
import { loadReportData, type ReportData } from "./data.js";
import { progressSpec } from "./progress.js";
import { openLedgerReadOnly } from "./read-only.js";
import { renderSvg, svgToPng } from "./render.js";
import { renderReportHtml } from "./report-html.js";
import { timelineSpec } from "./timeline.js";

export interface ReportFiles {
  html: string;
  png: string;
  svg: string;
}

export interface ReportOptions {
  /** The task's (or imported history's) folder. */
  root: string;
  /** The run; the most recent one when absent. */
  tag?: string;
  /** Where to write; default `.autoresearch/runs/<tag>/`. */
  out?: string;
}

/** The report's three artefacts in memory: the HTML page, the chart as SVG and as PNG. */
export async function buildReport(
  data: ReportData,
): Promise<{ html: string; svg: string; png: Buffer }> {
  const svg = await renderSvg(progressSpec(data));
  const timeline = timelineSpec(data);
  const timelineSvg = timeline ? await renderSvg(timeline) : null;
  return {
    svg,
    png: svgToPng(svg),
    html: renderReportHtml(data, { progress: svg, timeline: timelineSvg }),
  };
}

/** Writes report.html, progress.svg and progress.png for a run; returns their paths and the data. */
export async function writeReport(
  options: ReportOptions,
): Promise<{ files: ReportFiles; data: ReportData }> {
  const root = resolve(options.root);
  const ledger = openLedgerReadOnly(root, { upgrade: true });
  let data: ReportData;
  try {
    data = loadReportData(ledger, ledger.pick(options.tag), { root });
  } finally {
    ledger.close();
  }
  const built = await buildReport(data);
  const dir = options.out ? resolve(options.out) : paths.run(root, data.run.tag);
  const files = {
    html: join(dir, "report.html"),
    png: join(dir, "progress.png"),
    svg: join(dir, "progress.svg"),
  };
  mkdirSync(dir, { recursive: true });
  // Each file appears whole or not at all: a browser or a watcher may be reading it.
  for (const [path, content] of [
    [files.svg, built.svg],
    [files.png, built.png],
    [files.html, built.html],
  ] as const) {
    const temporary = `${path}.${process.pid}.tmp`;
    writeFileSync(temporary, content);
    renameSync(temporary, path);
  }
  return { files, data };
}
