import type { ProcessResult } from "../executors/process.js";
import { oneLine, printable } from "../util/text.js";
import { violations } from "./constraints.js";
import { type Metrics, parseMetrics, summaryProblem, unreported } from "./parse.js";
import type { MetricRules } from "./spec.js";

export const OUTCOMES = [
  "ok",
  "crash",
  "timeout",
  "no_metric",
  "bad_metric",
  "constraint",
  "interrupted",
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** What one replicate came to, as the judge sees it. */
export interface Classified {
  outcome: Outcome;
  /** Why, in a line; null when ok. */
  reason: string | null;
  metric: number | null;
  metrics: Metrics;
}

const TAIL_LINES = 30;

/** The last lines of a log, without the harness's own notes at the end. */
export function logTail(log: string, lines = TAIL_LINES): string {
  // Printable: the tail is shown on pages and terminals, and the program chose its bytes.
  return printable(log.trimEnd().split(/\r?\n/).slice(-lines).join("\n"), 20_000);
}

const ERROR_LINE =
  /^(\w+\.)*\w*(Error|Exception|Interrupt)\b[:(]|^(Traceback|panic|fatal|Killed)\b/;

/**
 * The line that says why a program died: the last error line (Python's exception after
 * its traceback, Node's `Error: ...` before its version footer), else the last line.
 */
function lastLine(log: string): string {
  const lines = log
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("[autoresearch]"));
  const tail = lines.slice(-40);
  const line = oneLine(tail.findLast((l) => ERROR_LINE.test(l)) ?? lines.at(-1) ?? "", 400);
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

/**
 * Classifies a finished replicate: interrupted, timeout, crash (exit code or signal),
 * no_metric, bad_metric (NaN or infinite, not a number, or printed twice with different
 * values), constraint, or ok.
 */
export function classify(
  proc: ProcessResult,
  log: string,
  task: MetricRules,
  resultFile: string | null = null,
): Classified {
  const metrics = parseMetrics(log, task.metric, task.secondary, resultFile);
  const value = metrics[task.metric.name];
  const metric = value !== undefined && Number.isFinite(value) ? value : null;
  const result = (outcome: Outcome, reason: string | null): Classified => ({
    outcome,
    reason,
    metric: outcome === "ok" || outcome === "constraint" ? metric : null,
    metrics,
  });

  if (proc.aborted) return result("interrupted", "stopped before it finished");
  if (proc.timedOut) return result("timeout", `ran past the timeout (${proc.durationMs / 1000}s)`);
  if (proc.spawnError) return result("crash", `could not start: ${proc.spawnError}`);
  if (proc.jobState && proc.jobState !== "COMPLETED" && proc.jobState !== "FAILED")
    return result("crash", `the job ended as ${proc.jobState}${suffix(lastLine(log))}`);
  if (proc.signal) return result("crash", `killed by ${proc.signal}${suffix(lastLine(log))}`);
  if (proc.exitCode !== 0)
    return result("crash", `exit code ${proc.exitCode}${suffix(lastLine(log))}`);
  if (proc.beforeTurn || proc.neverAsked)
    return result(
      "crash",
      `${proc.beforeTurn ? "it ended before its turn on the slot, so it worked beside another replicate" : "it never asked at its gate, so it may have worked beside another replicate"}: with \`overlap: true\` the run command must wait at AR_GATE before its timed work (README, Overlap), or set \`overlap: false\``,
    );
  const problem = task.metric.parser === "summary" ? summaryProblem(log, task.metric.name) : null;
  if (problem) return result("bad_metric", problem);
  if (value === undefined)
    return result(
      "no_metric",
      proc.truncated
        ? `${unreported(log, task.metric)}; the log reached log_limit and its middle was left out, which may have held it: raise log_limit, print the summary last, or write it to AR_RESULT_FILE`
        : unreported(log, task.metric),
    );
  if (!Number.isFinite(value)) return result("bad_metric", `${task.metric.name} is ${value}`);
  const broken = violations(metrics, task.constraints);
  if (broken.length) return result("constraint", `constraint violated: ${broken.join("; ")}`);
  return result("ok", null);
}

function suffix(line: string): string {
  return line ? `: ${line}` : "";
}
