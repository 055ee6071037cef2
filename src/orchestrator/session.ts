import { setMaxListeners } from "node:events";
import picomatch from "picomatch";
import { TaskFileError, UsageError, WorkspaceError } from "../errors.js";
import type { Executor, SetAside } from "../executors/executor.js";
import { createLocalExecutor, localSlots } from "../executors/local.js";
import { createSlurmExecutor } from "../executors/slurm.js";
import { createJudge } from "../judge/index.js";
import { Ledger } from "../ledger/ledger.js";
import type { RunRow } from "../ledger/types.js";
import {
  checkBudget,
  createResearcher,
  type ResearcherConfig,
  researcherConfig,
  type Traffic,
  trafficFetch,
} from "../researchers/index.js";
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
import { type RunContext, serialQueue } from "./context.js";
import type { Emit } from "./events.js";
import { drive, type Limits, type LoopEnd } from "./loop.js";
import { checkOwner, recover } from "./recover.js";
import { type RunSummary, summarize } from "./summary.js";
import type { TrialJob } from "./trial.js";

/** Where replicates run: local slots (CPU shares or GPUs), or SLURM jobs. */
export type ExecutorChoice =
  | { kind: "local"; gpus?: string[] | null; slots?: number }
  | {
      kind: "slurm";
      /** Jobs at most queued or running at once. */
      jobs?: number;
      partition?: string;
      account?: string;
      qos?: string;
      sbatchArgs?: string[];
    };

export interface SessionOptions {
  root: string;
  /** Total trials of the run; for resume, undefined keeps the run's own limit. */
  maxTrials?: number | null;
  maxHours?: number | null;
  /** Dollars of researcher spending after which no new trial starts; for resume as maxTrials. */
  maxUsd?: number | null;
  /** Where replicates run; for resume, undefined keeps the run's own. */
  executor?: ExecutorChoice;
  /** Trials proposed ahead of free slots (default: one per slot, none for mutate). */
  lookahead?: number;
  /** Record the provider traffic to a file, or replay it from one. */
  traffic?: Traffic;
  signal: AbortSignal;
  emit: Emit;
}

export interface StartOptions extends SessionOptions {
  tag: string;
  /**
   * Researcher kinds, comma-separated (default: the task file's, else mutate), or an
   * instance of one's own.
   */
  researcher?: string | Researcher;
  /** Researchers of each kind working at once, on one shared ledger. */
  researchers?: number;
  model?: string;
  baseUrl?: string;
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
  const own = typeof options.researcher === "object" ? options.researcher : null;
  const kinds =
    typeof options.researcher === "string"
      ? options.researcher.split(",").map((k) => k.trim())
      : [undefined];
  const configs = own
    ? []
    : kinds.map((kind) =>
        researcherConfig(task, {
          ...(kind ? { researcher: kind } : {}),
          ...(options.model ? { model: options.model } : {}),
          ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}),
        }),
      );
  for (const config of configs) checkBudget(config, options.maxUsd ?? null);
  const researchers = own
    ? [own]
    : instantiate(configs, options.researchers ?? 1, options.traffic ?? {});
  const executor = options.executor ?? { kind: "local" };
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
      researcher: own ? own.name : configs.map((c) => c.kind).join(","),
      judge: judge.name,
      seed: options.seed ?? task.seed,
      maxTrials: options.maxTrials ?? null,
      researcherJson: own ? null : JSON.stringify({ configs, count: options.researchers ?? 1 }),
      maxUsd: options.maxUsd ?? null,
      executorJson: JSON.stringify(executor),
    });
    options.emit({
      type: "run-start",
      tag: run.tag,
      task: task.name,
      metric: task.metric.name,
      resumed: false,
      researcher: run.researcher,
    });
    const ctx = context(task, ledger, run, options, researchers, executor);
    return await finishSession(ctx, options, []);
  } finally {
    ledger.close();
  }
}

export interface ResumeOptions extends SessionOptions {
  /** The run to continue; the most recent one when absent. */
  tag?: string;
  /** Replaces the run's own researcher (by default the ones it was started with). */
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
    if (options.maxTrials !== undefined) ledger.setMaxTrials(run.id, options.maxTrials);
    if (options.maxUsd !== undefined) ledger.setMaxUsd(run.id, options.maxUsd);
    const executor: ExecutorChoice =
      options.executor ?? (run.executorJson ? JSON.parse(run.executorJson) : { kind: "local" });
    if (options.executor) ledger.setExecutor(run.id, JSON.stringify(executor));
    const current = ledger.runById(run.id)!;
    const researchers = options.researcher
      ? [options.researcher]
      : storedResearchers(task, current, options.traffic ?? {});
    const ctx = context(task, ledger, current, options, researchers, executor);
    const recovery = await recover(task, ledger, current, ctx.executor);
    options.emit({
      type: "run-start",
      tag: run.tag,
      task: task.name,
      metric: task.metric.name,
      resumed: true,
      researcher: current.researcher,
    });
    if (recovery.interrupted || recovery.killed || recovery.reattached.length)
      options.emit({
        type: "recovered",
        interrupted: recovery.interrupted,
        killed: recovery.killed,
        reattached: recovery.reattached.length,
      });
    return await finishSession(ctx, options, recovery.reattached);
  } finally {
    ledger.close();
  }
}

/** The researchers a run was started with, rebuilt from what its record holds. */
function storedResearchers(task: Task, run: RunRow, traffic: Traffic): Researcher[] {
  if (!run.researcherJson && run.researcher !== "mutate")
    throw new UsageError(
      `run "${run.tag}" was driven by its own researcher (${run.researcher}); it cannot be resumed from the command line`,
    );
  const stored: { configs: ResearcherConfig[]; count: number } = run.researcherJson
    ? JSON.parse(run.researcherJson)
    : { configs: [researcherConfig(task, { researcher: "mutate" })], count: 1 };
  for (const config of stored.configs) checkBudget(config, run.maxUsd);
  return instantiate(stored.configs, stored.count, traffic);
}

function instantiate(configs: ResearcherConfig[], count: number, traffic: Traffic): Researcher[] {
  const fetch = trafficFetch(traffic);
  const shared = { ...(fetch ? { fetch } : {}), replaying: traffic.replay !== undefined };
  const researchers: Researcher[] = [];
  for (let i = 0; i < count; i++)
    for (const config of configs) researchers.push(createResearcher(config, shared));
  return researchers;
}

function createExecutor(
  task: Task,
  choice: ExecutorChoice,
  onSetAside: (s: SetAside) => void,
): Executor {
  if (choice.kind === "slurm")
    return createSlurmExecutor({
      partition: choice.partition ?? task.slurm.partition,
      account: choice.account ?? task.slurm.account,
      qos: choice.qos ?? task.slurm.qos,
      time: task.slurm.time,
      sbatchArgs: [...task.slurm.sbatchArgs, ...(choice.sbatchArgs ?? [])],
      jobs: choice.jobs ?? 4,
      pollMs: task.slurm.poll * 1000,
      requeues: task.slurm.requeues,
    });
  const slots = choice.gpus?.length
    ? localSlots({ gpus: choice.gpus, perReplicate: Math.max(1, task.resources.gpus) })
    : localSlots({ count: choice.slots ?? 1 });
  if (slots.length === 0)
    throw new UsageError(
      `--gpus: ${choice.gpus?.length} GPUs cannot hold one replicate of ${task.resources.gpus} GPUs (resources.gpus)`,
    );
  return createLocalExecutor(slots, { onSetAside });
}

/** The context one orchestrator process drives a run with. */
export function context(
  task: Task,
  ledger: Ledger,
  run: RunRow,
  options: Pick<SessionOptions, "signal" | "emit">,
  researchers: Researcher[],
  executor: ExecutorChoice,
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
    judge: createJudge(run.judge),
    executor: createExecutor(task, executor, (s) => {
      ledger.event(run.id, null, "slot-set-aside", s);
      options.emit({ type: "slot-set-aside", slot: s.slot, reason: s.reason });
    }),
    scope: new EditScope(task),
    signal: options.signal,
    emit: options.emit,
    setupDone: false,
    inFlight: new Map(),
    serially: serialQueue(),
  };
}

/** Drives the run to its limits and summarises it. */
export async function finishSession(
  ctx: RunContext,
  options: SessionOptions,
  resumed: TrialJob[],
): Promise<SessionResult> {
  const run = ctx.ledger.runById(ctx.run.id)!;
  const limits: Limits = {
    maxTrials: run.maxTrials,
    deadline: options.maxHours ? Date.now() + options.maxHours * 3600_000 : null,
    maxUsd: run.maxUsd,
    resumed,
    ...(options.lookahead !== undefined ? { lookahead: options.lookahead } : {}),
  };
  const end = await drive(ctx, limits);
  return { ...end, summary: summarize(ctx.task.root, ctx.ledger, ctx.ledger.runById(ctx.run.id)!) };
}

/** The globs must name real files: a typo in `protected` would silently protect nothing. */
export function checkTaskFiles(task: Task, files: string[]): void {
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
