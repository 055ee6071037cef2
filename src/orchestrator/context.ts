import { setMaxListeners } from "node:events";
import { UsageError } from "../errors.js";
import type { Executor, ExecutorChoice, SetAside } from "../executors/executor.js";
import { executorKind } from "../executors/index.js";
import {
  resolveSandbox,
  SANDBOX_MODES,
  type Sandbox,
  type SandboxMode,
} from "../executors/sandbox.js";
import { createJudge } from "../judge/index.js";
import type { Judge } from "../judge/judge.js";
import type { Ledger } from "../ledger/ledger.js";
import type { RunRow } from "../ledger/types.js";
import type { Researcher } from "../researchers/researcher.js";
import type { Task } from "../task/task.js";
import { serialQueue } from "../util/serial.js";
import { paths } from "../workspace/layout.js";
import { EditScope } from "../workspace/scope.js";
import { HarnessWatch } from "../workspace/watch.js";
import type { Emit } from "./events.js";
import type { SwarmLink } from "./swarm.js";
import { type ResultsWriter, resultsWriter } from "./trial/results.js";

/** Everything one orchestrator process needs to drive a run. */
export interface RunContext {
  task: Task;
  ledger: Ledger;
  run: RunRow;
  /** Proposals go to these in turn. */
  researchers: Researcher[];
  judge: Judge;
  executor: Executor;
  /** What bounds replicates and researchers on this machine. */
  sandbox: Sandbox;
  scope: EditScope;
  /** Aborted on Ctrl-C or SIGTERM: running replicates are ended, the run stops. */
  signal: AbortSignal;
  emit: Emit;
  /** Stages whose setup has run (or was found done) in this process. */
  setupDone: Set<string>;
  /** Titles of trials proposed and not yet finished, by trial number, shown to researchers. */
  inFlight: Map<number, string>;
  /** What proposals and replicates change outside their worktrees, and whose doing it is. */
  watch: HarnessWatch;
  /** The run's results.tsv, rewritten as trials finish. */
  results: ResultsWriter;
  /** Runs keep decisions one at a time: each reads the incumbent and may move it. */
  serially: <T>(work: () => Promise<T>) => Promise<T>;
  /** The next researcher to ask (round robin). */
  nextResearcher: () => Researcher;
  /** The run's part in a swarm, when it runs in one (`run --swarm`). */
  swarm?: SwarmLink;
  /**
   * The commit measured as it is while that runs: the baseline, or in a swarm a line head
   * being adopted. Trials begun on it meanwhile run their first replicate at once and are
   * judged once its measurement has ended.
   */
  measuring?: Measuring | null;
  /**
   * Trials measured and about to be judged, by number (beside a measurement, or resumed
   * with their replicates done): nothing new starts from the incumbent before they are.
   */
  judging: Set<number>;
  /**
   * Wakes the loop to count its free slots again: a trial that starts to wait for its
   * parent's measurement gives its slot up without ending. Set by the loop.
   */
  nudge?: () => void;
  /**
   * Which limit the run has reached (no new trial starts), or null: a win is then not
   * carried onto a newer incumbent, and a keep's line move waits for the swarm only a
   * moment. Set by the loop.
   */
  limitReached?: () => string | null;
  /**
   * Wins whose carry onto a newer incumbent is decided but whose trial has not begun, by
   * number: they count toward --max-trials, so that nothing else takes their place.
   */
  carrying: Set<number>;
}

/** A commit being measured as it is, and when its measuring trial ends. */
export interface Measuring {
  commit: string;
  ended: Promise<void>;
  /** How notices name it ("the baseline"). */
  what: string;
}

/** Where replicates run: a kind and its flags, or an executor of one's own. */
export type ExecutorOption = ExecutorChoice | Executor;

const isExecutor = (e: ExecutorOption): e is Executor => typeof e.run === "function";

/** What the run records of where its replicates ran, so that `resume` runs there too. */
export function executorRecord(option: ExecutorOption): ExecutorChoice {
  return isExecutor(option) ? { kind: option.kind } : option;
}

/** Refuses an executor that cannot run the task's replicates, before anything is recorded. */
export function checkExecutor(task: Task, option: ExecutorOption): void {
  if (!isExecutor(option)) executorKind(option.kind).check?.(option, task.resources.gpus);
}

/** The executor a run's choice names, with its kind's section of the task file. */
export function createExecutor(
  task: Task,
  option: ExecutorOption,
  onSetAside: (s: SetAside) => void,
): Executor {
  if (isExecutor(option)) return option;
  const choice = option;
  const kind = executorKind(choice.kind);
  const sections: Record<string, unknown> = task;
  return kind.create(choice, {
    settings: sections[kind.name],
    gpusPerReplicate: task.resources.gpus,
    onSetAside,
  });
}

/** The --sandbox a run was started with; undefined when it took the task file's. */
export function storedSandbox(run: RunRow): SandboxMode | undefined {
  if (run.sandbox === null) return undefined;
  if ((SANDBOX_MODES as readonly string[]).includes(run.sandbox)) return run.sandbox as SandboxMode;
  throw new UsageError(
    `run "${run.tag}" records the sandbox mode "${run.sandbox}", which this autoresearch does not know; record one it knows with \`autoresearch resume --tag ${run.tag} --sandbox ${SANDBOX_MODES.join("|")}\``,
  );
}

/** The executor a run was started with; runs recorded before executors were kept ran locally. */
export function storedExecutor(run: RunRow): ExecutorChoice {
  return run.executorJson ? JSON.parse(run.executorJson) : { kind: "local" };
}

/** The context one orchestrator process drives a run with. */
export function runContext(
  task: Task,
  ledger: Ledger,
  run: RunRow,
  options: {
    signal: AbortSignal;
    emit: Emit;
    sandbox?: SandboxMode | undefined;
    /** Where `sandbox` came from, as the sandbox's summary says it. */
    sandboxFrom?: string;
  },
  researchers: Researcher[],
  executor: ExecutorOption,
): RunContext {
  let turn = 0;
  // Every replicate and proposal in flight listens for the stop.
  setMaxListeners(0, options.signal);
  return {
    task,
    ledger,
    run,
    researchers,
    nextResearcher: () => researchers[turn++ % researchers.length]!,
    judge: createJudge(run.judge, task.judge),
    executor: createExecutor(task, executor, (s) => {
      ledger.event(run.id, null, "slot-set-aside", s);
      options.emit({ type: "slot-set-aside", slot: s.slot, reason: s.reason });
    }),
    sandbox: resolveSandbox(
      task.sandbox,
      options.sandbox,
      paths.state(task.root),
      options.sandboxFrom,
    ),
    scope: new EditScope(task),
    signal: options.signal,
    emit: options.emit,
    setupDone: new Set(),
    judging: new Set(),
    carrying: new Set(),
    inFlight: new Map(),
    results: resultsWriter(task, ledger, run),
    watch: new HarnessWatch(
      task,
      (file, why) => {
        ledger.event(run.id, null, "not-put-back", { file, why });
        options.emit({
          type: "notice",
          text: `${file} changed outside the worktrees and could not be put back (${why}): restore it yourself; the run goes on with it as it is`,
        });
      },
      options.signal,
    ),
    serially: serialQueue(),
  };
}
