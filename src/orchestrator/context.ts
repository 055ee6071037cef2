import type { Executor } from "../executors/executor.js";
import type { Judge } from "../judge/judge.js";
import type { Ledger } from "../ledger/ledger.js";
import type { RunRow } from "../ledger/types.js";
import type { Researcher } from "../researchers/researcher.js";
import type { Task } from "../task/task.js";
import type { EditScope } from "../workspace/scope.js";
import type { Emit } from "./events.js";

/** Everything one orchestrator process needs to drive a run. */
export interface RunContext {
  task: Task;
  ledger: Ledger;
  run: RunRow;
  researcher: Researcher;
  judge: Judge;
  executor: Executor;
  scope: EditScope;
  /** Aborted on Ctrl-C or SIGTERM: running replicates are ended, the run stops. */
  signal: AbortSignal;
  emit: Emit;
  /** Set once setup has run (or was found done) in this process. */
  setupDone: boolean;
}
