import type { TrialRow, Verdict } from "./types.js";

/**
 * karpathy/autoresearch's status column knows keep, discard and crash; its analysis
 * notebook reads exactly those. Our finer verdicts go to the extra `verdict` column.
 */
const STATUS: Record<Verdict, "keep" | "discard" | "crash"> = {
  keep: "keep",
  discard: "discard",
  crash: "crash",
  timeout: "crash",
  invalid: "crash",
  tampered: "crash",
  interrupted: "crash",
};

const clean = (text: string | null) => (text ?? "").replace(/[\t\r\n]+/g, " ").trim();

function memoryGb(metrics: Record<string, number>): number {
  if (metrics.memory_gb !== undefined) return metrics.memory_gb;
  if (metrics.peak_vram_mb !== undefined) return metrics.peak_vram_mb / 1024;
  return 0;
}

/**
 * The run's trials as results.tsv: `commit, <metric>, memory_gb, status, description`
 * first (karpathy/autoresearch's five columns), then trial, verdict, lines changed,
 * seconds, reason and the secondary metrics. Crashed trials show 0 as the original does;
 * interrupted ones are left out until they have run.
 */
export function resultsTsv(trials: TrialRow[], metricName: string, secondary: string[]): string {
  const header = [
    "commit",
    metricName,
    "memory_gb",
    "status",
    "description",
    "trial",
    "verdict",
    "lines_added",
    "lines_removed",
    "seconds",
    "reason",
    ...secondary,
  ];
  const rows = [header.join("\t")];
  for (const t of trials) {
    // An interrupted trial has no result yet: `resume` runs it again.
    if (t.state !== "done" || !t.verdict || t.verdict === "interrupted") continue;
    const status = STATUS[t.verdict];
    const measured = status !== "crash" && t.metric !== null;
    rows.push(
      [
        (t.commit ?? t.parentCommit).slice(0, 7),
        (measured ? t.metric! : 0).toFixed(6),
        (measured ? memoryGb(t.metrics) : 0).toFixed(1),
        status,
        clean(t.title),
        String(t.n),
        t.verdict,
        String(t.linesAdded ?? 0),
        String(t.linesRemoved ?? 0),
        t.runMs === null ? "" : (t.runMs / 1000).toFixed(1),
        clean(t.reason),
        ...secondary.map((name) => (t.metrics[name] === undefined ? "" : String(t.metrics[name]))),
      ].join("\t"),
    );
  }
  return `${rows.join("\n")}\n`;
}
