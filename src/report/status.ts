import { relative } from "node:path";
import { improvement } from "../metrics/compare.js";
import type { RunSummary } from "../orchestrator/index.js";
import { formatSeconds } from "../util/units.js";
import { fmtPercentChange } from "./html.js";
import { fmtMetric } from "./terminal.js";

const percent = (x: number) => `${(x * 100).toFixed(0)}%`;

/** The rarer outcomes, named only when there are some. */
function counted(s: RunSummary): string {
  const parts: string[] = [];
  if (s.invalid) parts.push(`invalid ${s.invalid}`);
  if (s.tampered) parts.push(`tampered ${s.tampered}`);
  if (s.interrupted) parts.push(`interrupted ${s.interrupted}`);
  if (s.adopted) parts.push(`adopted ${s.adopted}`);
  return parts.map((p) => ` · ${p}`).join("");
}

/** A few lines on a run: state, counts, baseline → best, where the results are, what is running. */
export function formatSummary(s: RunSummary): string {
  const { run } = s;
  const state = s.live
    ? "running now"
    : run.status === "running"
      ? "not running (resume it)"
      : run.status;
  const lines = [
    // An imported run's stop reason would only repeat where it came from, said below.
    `run ${run.tag}: ${state}${run.stopReason && !s.live && !s.importedFrom ? ` (${run.stopReason})` : ""} · researcher ${run.researcher} · judge ${run.judge}`,
    `  trials ${s.trials} · kept ${s.kept}${s.keepRate === null ? "" : ` (keep rate ${percent(s.keepRate)})`} · crashed ${s.crashed}${counted(s)}`,
  ];
  if (s.best?.metric != null) {
    const best = s.best.metric;
    let line = `  ${run.metric}: baseline ${fmtMetric(s.baseline)} → best ${fmtMetric(best)} (trial ${s.best.n}`;
    if (s.baseline !== null && s.baseline !== 0) {
      const gain = improvement(best, s.baseline, run.goal) / Math.abs(s.baseline);
      line +=
        gain === 0
          ? ", no better than the baseline"
          : `, ${gain > 0 ? "+" : ""}${fmtPercentChange(gain)} better`;
    }
    lines.push(`${line})`);
  }
  const shown = (file: string) => relative(process.cwd(), file) || file;
  lines.push(
    s.importedFrom
      ? `  imported from ${shown(s.importedFrom)}`
      : `  branch ${run.branch} · results ${shown(s.resultsFile)}`,
  );
  if (s.noise?.sd != null)
    lines.push(
      `  noise floor: ${run.metric} varies by ${fmtMetric(s.noise.sd)} (standard deviation) over ${s.noise.values.length} seeds of trial #${s.noise.trial}${s.noise.measuredBy ? `, measured by swarm host ${s.noise.measuredBy}` : ""}`,
    );
  if (s.slots.length > 1 || s.inFlight.length > 0) {
    const busy = s.slots.map(
      (b) => `${b.slot} ${percent(s.spanMs ? b.busyMs / s.spanMs : 0)} (${b.replicates})`,
    );
    if (busy.length) lines.push(`  slots busy: ${busy.join(" · ")}`);
  }
  for (const f of s.inFlight) {
    const job = f.jobId ? `, job ${f.jobId}` : "";
    const elapsed = formatSeconds((Date.now() - f.since) / 1000);
    lines.push(`  ${f.state}: #${f.n} on ${f.slot ?? "?"}${job} for ${elapsed}: ${f.title ?? ""}`);
  }
  return lines.join("\n");
}
