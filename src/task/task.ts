import type { Constraint } from "../metrics/constraints.js";

export type Goal = "minimize" | "maximize";

export interface MetricSpec {
  name: string;
  goal: Goal;
  /** summary: "key: value" lines after the last "---"; json: a JSON object line; regex: last match. */
  parser: "summary" | "json" | "regex";
  pattern: string | null;
}

export interface SecondarySpec {
  name: string;
  /** Only for metrics found by their own regular expression. */
  pattern: string | null;
}

/** A loaded, validated task: what may change, how to run, what to measure. */
export interface Task {
  root: string;
  file: string;
  name: string;
  program: string;
  editable: string[];
  protected: string[];
  setup: string | null;
  run: string;
  /** Seconds; exported to replicates as AR_TIME_BUDGET. */
  budget: number;
  /** Seconds after which a replicate's process group is ended. */
  timeout: number;
  killGrace: number;
  logLimit: number;
  seed: number;
  metric: MetricSpec;
  secondary: SecondarySpec[];
  constraints: Constraint[];
  resources: { gpus: number; cpus: number | null };
  judge: { policy: "greedy"; minEffect: number };
  env: Record<string, string>;
}

export const TASK_FILE = "autoresearch.yaml";
