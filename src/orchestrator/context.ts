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
  /** Proposals go to these in turn. */
  researchers: Researcher[];
  judge: Judge;
  executor: Executor;
  scope: EditScope;
  /** Aborted on Ctrl-C or SIGTERM: running replicates are ended, the run stops. */
  signal: AbortSignal;
  emit: Emit;
  /** Stages whose setup has run (or was found done) in this process. */
  setupDone: Set<string>;
  /** Titles of trials proposed and not yet finished, by trial number, shown to researchers. */
  inFlight: Map<number, string>;
  /** Runs keep decisions one at a time: each reads the incumbent and may move it. */
  serially: <T>(work: () => Promise<T>) => Promise<T>;
  /** The next researcher to ask (round robin). */
  nextResearcher: () => Researcher;
}

export { serialQueue } from "../util/serial.js";
