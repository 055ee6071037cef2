import type { SandboxMode } from "../../executors/sandbox.js";
import { Ledger } from "../../ledger/ledger.js";
import type { RunRow } from "../../ledger/types.js";
import { loadTask } from "../../task/load.js";
import type { Task } from "../../task/task.js";
import { processStartTime } from "../../util/proc.js";
import { checkRepository } from "../../workspace/repo.js";
import {
  type ExecutorOption,
  type RunContext,
  runContext,
  storedExecutor,
  storedSandbox,
} from "../context.js";
import type { Emit } from "../events.js";
import { flushingAfter } from "../trial/results.js";
import { checkOwner, recover } from "./recover.js";

/** The task in `root` and its ledger, for `work`; the ledger is closed after. */
export async function withLedger<T>(
  root: string,
  work: (task: Task, ledger: Ledger) => Promise<T>,
  options: { indexesMended?: (problem: string | null) => void } = {},
): Promise<T> {
  const task = loadTask(root);
  await checkRepository(task.root);
  const ledger = Ledger.open(task.root, { verify: true, ...options });
  try {
    return await work(task, ledger);
  } finally {
    ledger.close();
  }
}

/** The run named `tag`, or the latest, for `work` ("resume", ...: what the message names). */
export function withExistingRun<T>(
  root: string,
  tag: string | undefined,
  doing: string,
  work: (task: Task, ledger: Ledger, run: RunRow) => Promise<T>,
): Promise<T> {
  return withLedger(root, (task, ledger) => work(task, ledger, ledger.pick(tag, doing)));
}

export interface ToolOptions {
  root: string;
  tag?: string;
  executor?: ExecutorOption;
  sandbox?: SandboxMode;
  signal: AbortSignal;
  emit: Emit;
}

/**
 * Opens a run for work besides its loop (promotion, noise): refuses one that is being
 * driven, settles what an earlier orchestrator left, and holds the run while working.
 */
export function withRun<T>(
  options: ToolOptions,
  doing: string,
  work: (ctx: RunContext) => Promise<T>,
): Promise<T> {
  return withExistingRun(options.root, options.tag, doing, async (task, ledger, run) => {
    checkOwner(run);
    // The --sandbox the run was started with, as resume keeps it.
    const sandbox = options.sandbox ?? storedSandbox(run);
    const sandboxFrom = options.sandbox ? "--sandbox" : "the run's --sandbox";
    await recover(task, ledger, run);
    const executor = options.executor ?? storedExecutor(run);
    const ctx = runContext(
      task,
      ledger,
      ledger.runById(run.id)!,
      { ...options, sandbox, sandboxFrom },
      [],
      executor,
    );
    ledger.setOwner(run.id, process.pid, processStartTime(process.pid));
    try {
      return await flushingAfter(ctx.results, work(ctx));
    } finally {
      ledger.setOwner(run.id, null, null);
    }
  });
}
