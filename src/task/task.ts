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
  researcher: ResearcherSettings;
  slurm: {
    partition: string | null;
    account: string | null;
    qos: string | null;
    /** Seconds; by default the task's timeout. */
    time: number | null;
    sbatchArgs: string[];
    /** Seconds between job state reads. */
    poll: number;
    requeues: number;
  };
}

/** How LLM, coding-agent and command researchers work, from the task file's `researcher`. */
export interface ResearcherSettings {
  /** The researcher `run` uses when --researcher is not given; mutate when absent. */
  kind: string | null;
  model: string | null;
  baseUrl: string | null;
  maxTurns: number;
  maxOutputTokens: number;
  historyTokens: number;
  /** Seconds a proposal may take. */
  timeout: number;
  retries: number;
  /** Dollars per million tokens, by model name. */
  prices: Record<string, { input: number; output: number }>;
  command: string | null;
  args: string[];
}

export const TASK_FILE = "autoresearch.yaml";
