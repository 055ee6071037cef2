import { relative } from "node:path";
import type { ReportData } from "./data.js";
import { fmtNumber } from "./html.js";
import { writeReport } from "./write.js";

const TITLE_CHARS = 72;

/** What a run kept, one line per kept trial (the baseline first), in trial order. */
export function formatKept(data: ReportData): string {
  const kept = data.trials.filter((t) => t.verdict === "keep");
  const { experiments, kept: count } = data.summary;
  if (experiments === 0 && kept.length === 0) return "no experiment ran";
  const lines = [
    experiments === 0
      ? "no experiment ran; kept:"
      : `kept ${count} of ${experiments} experiment${experiments === 1 ? "" : "s"}:`,
  ];
  const width = Math.max(...kept.map((t) => fmtNumber(t.metric).length), 6);
  for (const t of kept) {
    // Adopted heads are listed too (their titles name their host): they are on the line.
    const title = t.baseline ? "baseline" : t.title;
    lines.push(
      `  #${String(t.n).padEnd(4)} ${data.metric.name} ${fmtNumber(t.metric).padEnd(width)}  ${title.length > TITLE_CHARS ? `${title.slice(0, TITLE_CHARS - 1)}…` : title}`,
    );
  }
  return lines.join("\n");
}

export interface Writable {
  write(text: string): unknown;
}

/**
 * The end of `run`, `resume` and `demo`: writes the run's report and prints what was kept
 * and where the report is. A report that cannot be made is said on `err`, never thrown:
 * the run itself has already been recorded.
 */
export async function printReportAfterRun(
  root: string,
  tag: string,
  out: Writable = process.stdout,
  err: Writable = process.stderr,
): Promise<void> {
  try {
    const { files, data } = await writeReport({ root, tag });
    const show = (path: string) => {
      const near = relative(process.cwd(), path);
      return near && !near.startsWith("..") ? near : path;
    };
    out.write(
      `\n${formatKept(data)}\n\nreport:   ${show(files.html)}\nchart:    ${show(files.png)}\n`,
    );
  } catch (error) {
    err.write(`autoresearch: the report could not be written: ${(error as Error).message}\n`);
  }
}
