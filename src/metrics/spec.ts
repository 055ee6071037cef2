import type { Constraint } from "./constraints.js";

export type Goal = "minimize" | "maximize";

/** The metric a run optimises and how it is read from a replicate's output. */
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

/** What a replicate's output is read and checked against. */
export interface MetricRules {
  metric: MetricSpec;
  secondary: SecondarySpec[];
  constraints: Constraint[];
}
