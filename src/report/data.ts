import { join } from "node:path";
import type { Ledger } from "../ledger/ledger.js";
import { changeName, promotions, type TransferTable as Transfer } from "../ledger/promotions.js";
import { runSessions } from "../ledger/sessions.js";
import {
  ADOPTER,
  type NoiseFloor,
  type RunRow,
  type TrialRow,
  type Verdict,
} from "../ledger/types.js";
import { improvement } from "../metrics/compare.js";
import { readHead } from "../util/safe-file.js";
import { paths, TRIAL_FILES } from "../workspace/layout.js";
import type {
  Improvement,
  ReportData,
  ReportSummary,
  TransferTable,
  TrialPoint,
} from "./data-types.js";
import { proposalCostUsd, replicateTime, type SlotSpan, slotSpans } from "./queries.js";
import { additivity, additivityTest, transfers } from "./transfer.js";

export type {
  HeldOutResult,
  Improvement,
  ReportData,
  ReportSummary,
  TransferTable,
  TrialPoint,
} from "./data-types.js";
export type { SlotSpan };

export interface LoadOptions {
  /** The task's folder: where the trials' diff.patch files are read from. */
  root?: string;
  /** Diffs longer than this are cut (bytes). */
  maxDiffBytes?: number;
}

const MAX_DIFF = 100_000;
const HOUR = 3_600_000;
const EXPERIMENT_VERDICTS = new Set<Verdict | null>([
  "keep",
  "discard",
  "crash",
  "timeout",
  "invalid",
  "tampered",
]);

/** Reads what the report needs about `run` from the ledger (and diffs from disk, with `root`). */
export function loadReportData(ledger: Ledger, run: RunRow, options: LoadOptions = {}): ReportData {
  const rows = ledger.trials(run.id);
  const trials = rows.map(toPoint);
  const summary = summarize(ledger, run, rows);
  return {
    run,
    metric: { name: run.metric, goal: run.goal },
    generatedAt: Date.now(),
    summary,
    trials,
    improvements: improvements(rows, run, options),
    slots: slotSpans(ledger.db, run.id),
    sessions: runSessions(ledger.db, run.id),
    heldOut: rows
      .filter((t) => t.verify)
      .map((t) => ({
        n: t.n,
        title: t.title ?? "",
        searchMetric: t.metric,
        heldOutMetric: t.verifyMetric,
        diverged: t.verify!.diverged,
      })),
    transfer: transferTables(ledger, run.id),
  };
}

/** The transfer tables of a run's finished promotions, oldest first. */
export function transferTables(ledger: Ledger, runId: number): TransferTable[] {
  return promotions
    .list(ledger, runId)
    .filter((p) => p.state === "done" && p.table)
    .map((p) => transferTable(p.table as Transfer));
}

function toPoint(t: TrialRow): TrialPoint {
  return {
    n: t.n,
    title: t.title ?? (t.baseline ? "baseline" : ""),
    state: t.state,
    verdict: t.verdict,
    baseline: t.baseline,
    metric: t.metric,
    parentMetric: t.incumbentMetric,
    researcher: t.researcher,
    commit: t.commit,
    createdAt: t.createdAt,
    finishedAt: t.finishedAt,
  };
}

// Another host's head adopted in a swarm is measured here but was not this run's idea.
const isExperiment = (t: TrialRow) =>
  t.state === "done" &&
  !t.baseline &&
  t.researcher !== ADOPTER &&
  EXPERIMENT_VERDICTS.has(t.verdict);

function summarize(ledger: Ledger, run: RunRow, rows: TrialRow[]): ReportSummary {
  const experiments = rows.filter(isExperiment);
  const kept = experiments.filter((t) => t.verdict === "keep").length;
  const crashed = experiments.filter(
    (t) => t.verdict === "crash" || t.verdict === "timeout",
  ).length;
  const baseline = rows.find((t) => t.baseline && t.verdict === "keep")?.metric ?? null;
  const bestRow = run.incumbentId === null ? null : rows.find((t) => t.id === run.incumbentId);
  const best = bestRow?.metric ?? null;
  const total = best !== null && baseline !== null ? improvement(best, baseline, run.goal) : null;
  const time = replicateTime(ledger.db, run.id, gpusPerReplicate(run));
  const n = experiments.length;
  return {
    trials: rows.length,
    experiments: n,
    kept,
    crashed,
    keepRate: n ? kept / n : null,
    crashRate: n ? crashed / n : null,
    baseline,
    best,
    bestTrial: bestRow?.n ?? null,
    totalImprovement: total,
    relativeImprovement: total !== null && baseline ? total / Math.abs(baseline) : null,
    trialsPerKeep: kept ? n / kept : null,
    noiseFloor: run.noiseJson ? ((JSON.parse(run.noiseJson) as NoiseFloor).sd ?? null) : null,
    replicateHours: time.ms / HOUR,
    gpuHours: time.gpuMs > 0 ? time.gpuMs / HOUR : null,
    llmCostUsd: proposalCostUsd(ledger.db, run.id),
  };
}

/** The task's `resources.gpus` as the run recorded it; 1 when the run does not say. */
function gpusPerReplicate(run: RunRow): number {
  try {
    const task = JSON.parse(run.taskJson) as { resources?: { gpus?: unknown } };
    const gpus = task.resources?.gpus;
    return typeof gpus === "number" && gpus >= 0 ? gpus : 1;
  } catch {
    return 1;
  }
}

function improvements(rows: TrialRow[], run: RunRow, options: LoadOptions): Improvement[] {
  const result: Improvement[] = [];
  let since = 0;
  for (const t of rows) {
    if (!isExperiment(t)) continue;
    since++;
    if (t.verdict !== "keep" || t.metric === null) continue;
    const delta =
      t.incumbentMetric === null ? null : improvement(t.metric, t.incumbentMetric, run.goal);
    result.push({
      n: t.n,
      title: t.title ?? "",
      hypothesis: t.hypothesis,
      metric: t.metric,
      parentMetric: t.incumbentMetric,
      delta,
      relative: delta !== null && t.incumbentMetric ? delta / Math.abs(t.incumbentMetric) : null,
      effort: since,
      commit: t.commit,
      diff: options.root ? readDiff(options.root, run.tag, t.n, options.maxDiffBytes) : null,
    });
    since = 0;
  }
  return result.sort((a, b) => (b.delta ?? -Infinity) - (a.delta ?? -Infinity) || a.n - b.n);
}

/** The trial's diff.patch as the orchestrator wrote it, cut to `max` bytes; null if absent. */
export function readDiff(root: string, tag: string, n: number, max = MAX_DIFF): string | null {
  // Never through a link or into a FIFO a replicate may have put in the trial's folder.
  const text = readHead(join(paths.trial(root, tag, n), TRIAL_FILES.diff), max + 1);
  if (text === null) return null;
  return text.length > max ? `${text.slice(0, max)}\n… (cut at ${max} bytes)\n` : text;
}

/** A promotion's transfer table, as rows of numbers under labelled columns. */
function transferTable(t: Transfer): TransferTable {
  const round = (x: number | null) => (x === null ? "—" : String(Number(x.toPrecision(6))));
  const test = additivityTest(t);
  return {
    title: `stage ${t.stage}, ${t.seeds} seed${t.seeds === 1 ? "" : "s"} each: baseline ${round(t.baseline)} → incumbent ${round(t.incumbent)}`,
    columns: ["found", `at ${t.stage}`],
    rows: [
      ...t.rows.map((r) => ({
        label: `${changeName(r)} ${r.title}`,
        values: [r.found, r.atStage],
        transfers: transfers(r),
      })),
      // Stage-level effects: they belong under the stage's column, in the order named.
      { label: "stacked (the incumbent against the baseline)", values: [null, t.stacked] },
      { label: "the single effects summed", values: [null, t.sum] },
    ],
    notes: [additivity(t), ...(test ? [test] : [])],
  };
}
