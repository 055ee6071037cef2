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
  judge: {
    policy: "greedy" | "confirm";
    minEffect: number;
    /** Replicates (seeds) per trial at most; also the seeds of the baseline's noise floor. */
    seeds: number;
    /** One-sided confidence of the confirm judge's bound. */
    confidence: number;
  };
  /** A held-out check run on every new incumbent, and the metric it prints. */
  verify: { run: string; metric: string } | null;
  /** Globs of files a replicate may create or change besides the editable ones. */
  outputs: string[];
  /** The scale ladder; the first stage is where the search runs. */
  stages: Stage[];
  /** Promote to the next stage automatically after this many keeps. */
  promoteEvery: number | null;
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

/** A rung of the scale ladder: more model, more budget, more seeds. */
export interface Stage {
  name: string;
  env: Record<string, string>;
  budget: number;
  timeout: number;
  seeds: number;
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
