import picomatch from "picomatch";
import { TaskFileError, UsageError, WorkspaceError } from "../errors.js";
import type { Executor } from "../executors/executor.js";
import { createLocalExecutor, localSlots } from "../executors/local.js";
import { createJudge } from "../judge/index.js";
import { Ledger } from "../ledger/ledger.js";
import type { RunRow } from "../ledger/types.js";
import { createResearcher } from "../researchers/index.js";
import type { Researcher } from "../researchers/researcher.js";
import { loadTask } from "../task/load.js";
import type { Task } from "../task/task.js";
import {
  branchName,
  branchRef,
  checkClean,
  checkRepository,
  checkTag,
  excludeStateDir,
  headCommit,
  resolveRef,
  setRef,
  trackedFiles,
} from "../workspace/repo.js";
import { EditScope } from "../workspace/scope.js";
import type { RunContext } from "./context.js";
import type { Emit } from "./events.js";
import { drive, type LoopEnd } from "./loop.js";
import { checkOwner, recover } from "./recover.js";
import { type RunSummary, summarize } from "./summary.js";

export interface SessionOptions {
  root: string;
  maxTrials?: number | null;
  maxHours?: number | null;
  /** CPU slots for this machine; GPU slots come with the parallel executor. */
  slots?: number;
  signal: AbortSignal;
  emit: Emit;
}

export interface StartOptions extends SessionOptions {
  tag: string;
  /** A researcher's name, or an instance (an embedding program's own researcher). */
  researcher: string | Researcher;
  seed?: number;
}

export interface SessionResult extends LoopEnd {
  summary: RunSummary;
}

/** Starts a new run from the task's HEAD: branch `autoresearch/<tag>`, then trials until a limit. */
export async function startRun(options: StartOptions): Promise<SessionResult> {
  const task = loadTask(options.root);
  checkTag(options.tag);
  await checkRepository(task.root);
  await excludeStateDir(task.root);
  await checkClean(task.root);
  checkTaskFiles(task, await trackedFiles(task.root));
  const researcher =
    typeof options.researcher === "string"
      ? createResearcher(options.researcher)
      : options.researcher;
  const judge = createJudge(task.judge.policy);
  const ledger = Ledger.open(task.root);
  try {
    if (ledger.run(options.tag))
      throw new UsageError(
        `--tag: run "${options.tag}" already exists in this task; continue it with \`autoresearch resume --tag ${options.tag}\` or choose another tag`,
      );
    if (await resolveRef(task.root, branchRef(options.tag)))
      throw new WorkspaceError(
        `--tag: branch ${branchName(options.tag)} already exists; choose another tag or delete the branch`,
      );
    const base = await headCommit(task.root);
    await setRef(task.root, branchRef(options.tag), base, null);
    const run = ledger.createRun({
      tag: options.tag,
      taskName: task.name,
      taskJson: JSON.stringify(task),
      metric: task.metric.name,
      goal: task.metric.goal,
      baseCommit: base,
      branch: branchName(options.tag),
      researcher: researcher.name,
      judge: judge.name,
      seed: options.seed ?? task.seed,
      maxTrials: options.maxTrials ?? null,
    });
    options.emit({
      type: "run-start",
      tag: run.tag,
      task: task.name,
      metric: task.metric.name,
      resumed: false,
      researcher: researcher.name,
    });
    const ctx = context(task, ledger, run, options, researcher);
    return await finishSession(ctx, options, run.maxTrials);
  } finally {
    ledger.close();
  }
}

export interface ResumeOptions extends SessionOptions {
  /** The run to continue; the most recent one when absent. */
  tag?: string;
  /** Replaces the run's own researcher (by default the one it was started with). */
  researcher?: Researcher;
}

/** Continues a stopped, failed or killed run where it left off. */
export async function resumeRun(options: ResumeOptions): Promise<SessionResult> {
  const task = loadTask(options.root);
  await checkRepository(task.root);
  const ledger = Ledger.open(task.root);
  try {
    const run = options.tag ? ledger.run(options.tag) : (ledger.runs().at(-1) ?? null);
    if (!run)
      throw new UsageError(
        options.tag
          ? `--tag: no run "${options.tag}" in this task; runs: ${
              ledger
                .runs()
                .map((r) => r.tag)
                .join(", ") || "none"
            }`
          : "no run to resume in this task; start one with `autoresearch run`",
      );
    if (run.metric !== task.metric.name || run.goal !== task.metric.goal)
      throw new TaskFileError(
        `${task.file}: metric: run "${run.tag}" measures ${run.metric} (${run.goal}) but the task file now says ${task.metric.name} (${task.metric.goal}); start a new run instead`,
      );
    checkOwner(run);
    const recovery = await recover(task, ledger, run);
    options.emit({
      type: "run-start",
      tag: run.tag,
      task: task.name,
      metric: task.metric.name,
      resumed: true,
      researcher: run.researcher,
    });
    if (recovery.interrupted || recovery.killed)
      options.emit({
        type: "recovered",
        interrupted: recovery.interrupted,
        killed: recovery.killed,
        judged: 0,
      });
    if (options.maxTrials !== undefined) ledger.setMaxTrials(run.id, options.maxTrials);
    const current = ledger.runById(run.id)!;
    const ctx = context(
      task,
      ledger,
      current,
      options,
      options.researcher ?? createResearcher(current.researcher),
    );
    return await finishSession(ctx, options, current.maxTrials);
  } finally {
    ledger.close();
  }
}

function context(
  task: Task,
  ledger: Ledger,
  run: RunRow,
  options: SessionOptions,
  researcher: Researcher,
): RunContext {
  const executor: Executor = createLocalExecutor(localSlots({ count: options.slots ?? 1 }));
  return {
    task,
    ledger,
    run,
    researcher,
    judge: createJudge(run.judge),
    executor,
    scope: new EditScope(task),
    signal: options.signal,
    emit: options.emit,
    setupDone: false,
  };
}

async function finishSession(
  ctx: RunContext,
  options: SessionOptions,
  maxTrials: number | null,
): Promise<SessionResult> {
  const deadline = options.maxHours ? Date.now() + options.maxHours * 3600_000 : null;
  const end = await drive(ctx, { maxTrials, deadline });
  return { ...end, summary: summarize(ctx.task.root, ctx.ledger, ctx.ledger.runById(ctx.run.id)!) };
}

/** The globs must name real files: a typo in `protected` would silently protect nothing. */
function checkTaskFiles(task: Task, files: string[]): void {
  const scope = new EditScope(task);
  if (!files.some((f) => scope.isEditable(f)))
    throw new TaskFileError(
      `${task.file}: editable: ${JSON.stringify(task.editable)} matches no tracked file the researcher may change`,
    );
  for (const glob of task.protected) {
    const match = picomatch(glob, { dot: true });
    if (!files.some((f) => match(f)))
      throw new TaskFileError(`${task.file}: protected: "${glob}" matches no tracked file`);
  }
}
