import { scrubbedEnv } from "../executors/env.js";
import type { Task } from "../task/task.js";
import { paths } from "./paths.js";

/** The environment shared by setup and replicates: no secrets, the task's variables, AR_ basics. */
export function baseEnv(task: Task, tag: string): Record<string, string> {
  return {
    ...scrubbedEnv(),
    // Logs are read live and after a kill; buffered output would be lost.
    PYTHONUNBUFFERED: "1",
    ...task.env,
    AR_RUN: tag,
    AR_TIME_BUDGET: String(task.budget),
    AR_CACHE_DIR: paths.cache(task.root),
  };
}

export function replicateEnv(
  task: Task,
  tag: string,
  r: { trial: number; idx: number; seed: number; resultFile: string },
): Record<string, string> {
  return {
    ...baseEnv(task, tag),
    AR_TRIAL: String(r.trial),
    AR_REPLICATE: String(r.idx),
    AR_SEED: String(r.seed),
    AR_RESULT_FILE: r.resultFile,
  };
}
