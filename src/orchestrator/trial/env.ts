import { scrubbedEnv } from "../../executors/env.js";
import type { Stage, Task } from "../../task/task.js";
import { paths } from "../../workspace/layout.js";

/** The environment shared by setup and replicates: no secrets, the task's variables, AR_ basics. */
export function baseEnv(task: Task, tag: string): Record<string, string> {
  const cache = paths.cache(task.root);
  const compile = paths.compileCaches(task.root);
  return {
    ...scrubbedEnv(process.env, task.passEnv),
    // Logs are read live and after a kill; buffered output would be lost.
    PYTHONUNBUFFERED: "1",
    // One compile cache per task: every trial after the first starts several times faster.
    TORCHINDUCTOR_CACHE_DIR: compile.inductor,
    TRITON_CACHE_DIR: compile.triton,
    ...task.env,
    AR_RUN: tag,
    AR_TIME_BUDGET: String(task.budget),
    AR_CACHE_DIR: cache,
  };
}

export function replicateEnv(
  task: Task,
  tag: string,
  r: { trial: number | string; idx: number; seed: number; resultFile: string; stage: Stage },
): Record<string, string> {
  return {
    ...baseEnv(task, tag),
    ...r.stage.env,
    AR_STAGE: r.stage.name,
    AR_TIME_BUDGET: String(r.stage.budget),
    AR_TRIAL: String(r.trial),
    AR_REPLICATE: String(r.idx),
    AR_SEED: String(r.seed),
    AR_RESULT_FILE: r.resultFile,
  };
}
