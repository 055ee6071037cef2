import type { Goal } from "./spec.js";

/** True if `candidate` beats `incumbent` by more than `minEffect` in the direction of `goal`. */
export function isBetter(candidate: number, incumbent: number, goal: Goal, minEffect = 0): boolean {
  return goal === "minimize"
    ? candidate < incumbent - minEffect
    : candidate > incumbent + minEffect;
}

/** Improvement of `candidate` over `reference`, positive when better whatever the goal. */
export function improvement(candidate: number, reference: number, goal: Goal): number {
  return goal === "minimize" ? reference - candidate : candidate - reference;
}

/** The best of several values for `goal`. */
export function best(values: number[], goal: Goal): number | null {
  if (values.length === 0) return null;
  return goal === "minimize" ? Math.min(...values) : Math.max(...values);
}
