import type { Outcome } from "../metrics/outcome.js";
import type { Goal } from "../metrics/spec.js";

export const VERDICTS = [
  "keep",
  "discard",
  "crash",
  "timeout",
  "invalid",
  "tampered",
  "interrupted",
] as const;
export type Verdict = (typeof VERDICTS)[number];

/**
 * The researcher name recorded for a trial that measures another host's keep in a swarm:
 * on this run's line, but not this run's idea.
 */
export const ADOPTER = "swarm";

/** The researcher name of `try`'s trials (and of the runs it starts): the person's own edits. */
export const TRY_RESEARCHER = "agent";

export type RunStatus = "running" | "stopped" | "finished" | "failed";
export type TrialState = "proposing" | "running" | "done";

export interface RunRow {
  id: number;
  tag: string;
  taskName: string;
  taskJson: string;
  metric: string;
  goal: Goal;
  baseCommit: string;
  branch: string;
  researcher: string;
  judge: string;
  seed: number;
  maxTrials: number | null;
  status: RunStatus;
  stopReason: string | null;
  incumbentId: number | null;
  ownerPid: number | null;
  ownerStart: string | null;
  createdAt: number;
  updatedAt: number;
  researcherJson: string | null;
  maxUsd: number | null;
  executorJson: string | null;
  /** The run's stop rules (Stops in the orchestrator), as JSON. */
  stopsJson: string | null;
  noiseJson: string | null;
  /** The --sandbox mode the run was started (or last resumed) with; null: the task file's. */
  sandbox: string | null;
}

/** The metric's spread over seeds of unchanged code. */
export interface NoiseFloor {
  /** The trial whose code was measured (the baseline, or a later incumbent). */
  trial: number;
  seeds: number[];
  values: number[];
  mean: number;
  /** Sample standard deviation; null with fewer than two values. */
  sd: number | null;
  at: number;
  /** In a swarm: the host of the class that measured it, when another than this one. */
  measuredBy?: string;
}

/** The judge's estimate of a trial's improvement over its parent (positive is better). */
export interface Estimate {
  /** Replicates paired with the parent on the same seed. */
  n: number;
  mean: number;
  /** Standard deviation of one paired difference, as used for the bounds. */
  sd: number | null;
  df: number | null;
  lower: number | null;
  upper: number | null;
  confidence: number;
}

/** A held-out check run on a new incumbent. */
export interface VerifyResult {
  metric: number | null;
  /** The previous incumbent's held-out value. */
  previous: number | null;
  /** The search metric improved while the held-out one got worse. */
  diverged: boolean;
  outcome: string;
  reason: string | null;
}

export interface TrialRow {
  id: number;
  runId: number;
  n: number;
  baseline: boolean;
  parentCommit: string;
  commit: string | null;
  state: TrialState;
  verdict: Verdict | null;
  reason: string | null;
  title: string | null;
  hypothesis: string | null;
  researcher: string;
  metric: number | null;
  incumbentMetric: number | null;
  metrics: Record<string, number>;
  linesAdded: number | null;
  linesRemoved: number | null;
  proposeMs: number | null;
  commitMs: number | null;
  runMs: number | null;
  createdAt: number;
  finishedAt: number | null;
  /** The trial whose change this one re-applies on a newer incumbent. */
  rebaseOf: number | null;
  estimate: Estimate | null;
  verifyMetric: number | null;
  verify: VerifyResult | null;
}

export interface ReplicateRow {
  id: number;
  trialId: number;
  idx: number;
  seed: number;
  slot: string | null;
  pid: number | null;
  pidStart: string | null;
  state: "running" | "done";
  outcome: Outcome | null;
  reason: string | null;
  exitCode: number | null;
  signal: string | null;
  metric: number | null;
  metrics: Record<string, number>;
  logPath: string;
  logBytes: number | null;
  logTail: string | null;
  startedAt: number;
  finishedAt: number | null;
  durationMs: number | null;
  /** The SLURM job, when the replicate ran on a cluster. */
  jobId: string | null;
  /** CUDA_VISIBLE_DEVICES of the slot. */
  gpus: string | null;
  /** When it really started running (after a cluster queue). */
  runningAt: number | null;
}

/** What one proposal cost; failed proposals cost money too. */
export interface ProposalUsage {
  model: string;
  tokensIn: number;
  tokensOut: number;
  /** Null when the model's price is unknown. */
  costUsd: number | null;
  turns: number;
}

/**
 * The file an imported run was read from (`import` notes it in the run's recorded task),
 * or null. An imported run is a record without commits, refs or a branch.
 */
export function importedFrom(run: RunRow): string | null {
  const task = JSON.parse(run.taskJson) as { imported?: unknown };
  return typeof task.imported === "string" ? task.imported : null;
}
