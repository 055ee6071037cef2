import { setMaxListeners } from "node:events";
import picomatch from "picomatch";
import { TaskFileError, UsageError, WorkspaceError } from "../errors.js";
import type { Executor, SetAside } from "../executors/executor.js";
import { createLocalExecutor, localSlots } from "../executors/local.js";
import { createSlurmExecutor } from "../executors/slurm.js";
import { createJudge } from "../judge/index.js";
import { Ledger } from "../ledger/ledger.js";
import type { NoiseFloor, RunRow } from "../ledger/types.js";
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
import { monotonic } from "../util/clock.js";
import { isAlive, processStartTime } from "../util/proc.js";
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
import { diagnose, type Problem } from "./doctor.js";
import type { Emit } from "./events.js";
import { DEFAULT_STOPS, drive, type Limits, type LoopEnd, type Stops } from "./loop.js";
import { measureNoise } from "./noise.js";
import { promote, type TransferTable } from "./promote.js";
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
  /**
   * Dollars, researchers' spending plus GPU time at `stops.gpuHourUsd`, after which no new
   * trial starts; for resume as maxTrials.
   */
  maxUsd?: number | null;
  /** Stop rules; for resume, what is given replaces the run's own. */
  stops?: Partial<Stops>;
  /** Where replicates run; for resume, undefined keeps the run's own. */
  executor?: ExecutorChoice;
  /** Trials proposed ahead of free slots (default: one per slot, none for mutate). */
  lookahead?: number;
  /** Replicates after which no new trial starts, for this session. */
  maxReplicates?: number | null;
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
    ledger.setStops(run.id, JSON.stringify({ ...DEFAULT_STOPS, ...options.stops }));
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
    ledger.setStops(run.id, JSON.stringify({ ...storedStops(run), ...options.stops }));
    const executor: ExecutorChoice =
      options.executor ?? (run.executorJson ? JSON.parse(run.executorJson) : { kind: "local" });
    if (options.executor) ledger.setExecutor(run.id, JSON.stringify(executor));
    const current = ledger.runById(run.id)!;
    const researchers = options.researcher
      ? [options.researcher]
      : storedResearchers(task, current, options.traffic ?? {});
    const ctx = context(task, ledger, current, options, researchers, executor);
    const recovery = await recover(task, ledger, current, {
      executor: ctx.executor,
      continueTrials: true,
    });
    options.emit({
      type: "run-start",
      tag: run.tag,
      task: task.name,
      metric: task.metric.name,
      resumed: true,
      researcher: current.researcher,
    });
    if (recovery.interrupted || recovery.killed || recovery.recovered || recovery.continued.length)
      options.emit({
        type: "recovered",
        interrupted: recovery.interrupted,
        killed: recovery.killed,
        recovered: recovery.recovered,
        continued: recovery.continued.length,
      });
    return await finishSession(ctx, options, recovery.continued);
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
    setupDone: new Set(),
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
    stops: storedStops(run),
    since: Date.now(),
    maxTrials: run.maxTrials,
    deadline: options.maxHours ? monotonic() + options.maxHours * 3600_000 : null,
    maxUsd: run.maxUsd,
    maxReplicates: options.maxReplicates ?? null,
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

export interface ToolOptions {
  root: string;
  tag?: string;
  executor?: ExecutorChoice;
  signal: AbortSignal;
  emit: Emit;
}

/** Opens a run for work besides its loop (promotion, noise), refusing one that is being driven. */
async function withRun<T>(options: ToolOptions, work: (ctx: RunContext) => Promise<T>): Promise<T> {
  const task = loadTask(options.root);
  await checkRepository(task.root);
  const ledger = Ledger.open(task.root);
  try {
    const run = options.tag ? ledger.run(options.tag) : (ledger.runs().at(-1) ?? null);
    if (!run)
      throw new UsageError(
        options.tag ? `--tag: no run "${options.tag}" in this task` : "no run in this task yet",
      );
    checkOwner(run);
    await recover(task, ledger, run);
    const executor: ExecutorChoice =
      options.executor ?? (run.executorJson ? JSON.parse(run.executorJson) : { kind: "local" });
    const ctx = context(task, ledger, ledger.runById(run.id)!, options, [], executor);
    ledger.setOwner(run.id, process.pid, processStartTime(process.pid));
    try {
      return await work(ctx);
    } finally {
      ledger.setOwner(run.id, null, null);
    }
  } finally {
    ledger.close();
  }
}

/** `autoresearch promote`: the transfer table of a run's kept changes at a larger stage. */
export function promoteRun(
  options: ToolOptions & { stage?: string; seeds?: number },
): Promise<TransferTable> {
  return withRun(options, (ctx) => promote(ctx, options.stage, options.seeds));
}

/** `autoresearch noise`: the incumbent on more seeds, and the run's noise floor again. */
export function noiseRun(options: ToolOptions & { seeds: number }): Promise<NoiseFloor> {
  return withRun(options, (ctx) => measureNoise(ctx, options.seeds));
}

export interface DoctorReport {
  tag: string;
  live: boolean;
  problems: Problem[];
  /** What `--fix` found before it repaired; empty without `--fix`. */
  fixed: Problem[];
}

/**
 * `autoresearch doctor`: the invariants of each run (or one), and with `fix`, the same
 * recovery `resume` does — without starting trials — for runs no orchestrator drives.
 */
export async function doctorRuns(options: {
  root: string;
  tag?: string;
  fix: boolean;
}): Promise<DoctorReport[]> {
  const task = loadTask(options.root);
  await checkRepository(task.root);
  const ledger = Ledger.open(task.root);
  try {
    const runs = options.tag ? [ledger.run(options.tag)].filter((r) => r !== null) : ledger.runs();
    if (options.tag && runs.length === 0)
      throw new UsageError(`--tag: no run "${options.tag}" in this task`);
    const reports: DoctorReport[] = [];
    for (const run of runs) {
      const live = run.ownerPid !== null && isAlive(run.ownerPid, run.ownerStart);
      let problems = await diagnose(task, ledger, run);
      let fixed: Problem[] = [];
      if (options.fix && problems.length && !live) {
        await recover(task, ledger, run);
        fixed = problems;
        problems = await diagnose(task, ledger, ledger.runById(run.id)!);
      }
      reports.push({ tag: run.tag, live, problems, fixed });
    }
    return reports;
  } finally {
    ledger.close();
  }
}

/** The run's stop rules; runs made before they were kept get the defaults. */
function storedStops(run: RunRow): Stops {
  return { ...DEFAULT_STOPS, ...(run.stopsJson ? JSON.parse(run.stopsJson) : {}) };
}
