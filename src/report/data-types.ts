import type { Session } from "../ledger/sessions.js";
import type { RunRow, TrialState, Verdict } from "../ledger/types.js";
import type { Goal } from "../metrics/spec.js";
import type { SlotSpan } from "./queries.js";

/**
 * What the report and the dashboard know about a run. Sections the ledger does not
 * record yet (noise floor, held-out checks, transfer up the scale ladder) are null or
 * empty until it does; renderers show a section only when it has data.
 */
/** One trial as charts and tables show it. */
export interface TrialPoint {
  n: number;
  title: string;
  state: TrialState;
  verdict: Verdict | null;
  baseline: boolean;
  metric: number | null;
  /** The incumbent's metric when the trial was judged: what it had to beat. */
  parentMetric: number | null;
  researcher: string;
  commit: string | null;
  createdAt: number;
  finishedAt: number | null;
}

/** A kept trial (the baseline excluded) and what it gained over its parent. */
export interface Improvement {
  n: number;
  title: string;
  hypothesis: string | null;
  metric: number;
  parentMetric: number | null;
  /** Gain over the parent's metric, positive when better whatever the goal. */
  delta: number | null;
  /** delta / |parent metric|; null when the parent's metric is unknown or 0. */
  relative: number | null;
  /** Experiments since the previous keep, this one included: the effort it took. */
  effort: number;
  commit: string | null;
  /** The change as a unified diff, where the trial's diff.patch is at hand. */
  diff: string | null;
}

/** A held-out check (`verify`) of a new best. */
export interface HeldOutResult {
  n: number;
  title: string;
  searchMetric: number | null;
  heldOutMetric: number | null;
  /** The search metric improved while the held-out one got worse. */
  diverged: boolean;
}

/** Results of kept changes carried up the scale ladder (one table per promotion). */
export interface TransferTable {
  title: string;
  columns: string[];
  /** `transfers`: yes, NO or not isolable for a kept change; absent for the stage's totals. */
  rows: { label: string; values: (number | null)[]; transfers?: string }[];
  /** Whether the effects add up, and how that was tested. */
  notes: string[];
}

export interface ReportSummary {
  /** Every trial recorded, in flight ones included. */
  trials: number;
  /** Finished trials that are not the baseline and were not interrupted. */
  experiments: number;
  /** Kept experiments (the baseline is not counted). */
  kept: number;
  /** Experiments that crashed or timed out. */
  crashed: number;
  keepRate: number | null;
  crashRate: number | null;
  baseline: number | null;
  best: number | null;
  bestTrial: number | null;
  /** best vs baseline, positive when better. */
  totalImprovement: number | null;
  relativeImprovement: number | null;
  trialsPerKeep: number | null;
  /** The judge's estimate of run-to-run noise, where one was made. */
  noiseFloor: number | null;
  /** Hours of replicate wall time. */
  replicateHours: number;
  /** Replicate hours × the GPUs each used; null for a CPU-only task. */
  gpuHours: number | null;
  /** What the researcher's model calls cost, where the ledger records it. */
  llmCostUsd: number | null;
}

/** Everything `report` and the dashboard draw for one run; optional parts are null or empty. */
export interface ReportData {
  run: RunRow;
  metric: { name: string; goal: Goal };
  generatedAt: number;
  summary: ReportSummary;
  trials: TrialPoint[];
  /** Kept trials, ranked by delta (largest gain first). */
  improvements: Improvement[];
  slots: SlotSpan[];
  /** When the run's sessions ran: slots are idle only within them (see `runSessions`). */
  sessions: Session[];
  heldOut: HeldOutResult[];
  transfer: TransferTable[];
}
