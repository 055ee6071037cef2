import type { settle } from "./schema.js";

/** A loaded, validated task: what may change, how to run, what to measure. */
export type Task = ReturnType<typeof settle>;

/** A rung of the scale ladder, with its budget, timeout and seeds settled. */
export type Stage = Task["stages"][number];
