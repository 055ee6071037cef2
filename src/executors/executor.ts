import type { z } from "zod";
import type { Flag, FlagValues } from "../util/flags.js";
import type { Confinement } from "./confine.js";
import type { ProcessResult } from "./process.js";

/** One place a replicate can run: a CPU share, a set of GPUs, or a lane of cluster jobs. */
export interface Slot {
  id: string;
  /** GPU indices exported as CUDA_VISIBLE_DEVICES, or null. */
  gpus: string[] | null;
}

/** Where a replicate was placed: its slot, and its process (local) or job (cluster). */
export interface Placement {
  slot: Slot;
  pid?: number;
  jobId?: string;
}

export interface ReplicateSpec {
  /** A readable name, used for cluster jobs. */
  name: string;
  command: string;
  cwd: string;
  /** The full environment except what the slot or the cluster adds. */
  env: Record<string, string>;
  logPath: string;
  logLimit: number;
  timeoutMs: number;
  killGraceMs: number;
  /** What one replicate needs. */
  gpus: number;
  cpus: number | null;
  signal: AbortSignal;
  /** Called once the replicate has a slot and a process or job, before it can outlive the caller. */
  onStart: (placement: Placement) => void;
  /** Called when a queued job starts to run (at once for local processes). */
  onRunning?: (at: number) => void;
  /** The sandbox it runs in and what it sees; none when null. */
  sandbox: Confinement | null;
  /** The largest file it may write (bytes): the sandbox's limit, applied without one too. */
  maxFileSize: number;
  /**
   * The command waits at a gate (AR_GATE) before its timed work, so an executor that can
   * may start it while its slot's replicate still runs; others ignore this.
   */
  gated?: boolean;
}

export interface ReplicateExecution {
  slot: Slot;
  process: ProcessResult;
}

/** Why a slot was taken out of use. */
export interface SetAside {
  slot: string;
  reason: string;
}

/**
 * Where a trial's command runs.
 * Contract: `run` waits for a free slot, never runs two replicates on one slot, and
 * resolves with how the replicate ended; failures of the experiment are never
 * rejections. It rejects only when no slot is left to run on. Executors whose replicates
 * survive the orchestrator (cluster jobs) can `attach` to one after a restart.
 */
export interface Executor {
  readonly kind: string;
  readonly slots: readonly Slot[];
  run(spec: ReplicateSpec): Promise<ReplicateExecution>;
  /** Follows a job submitted by an earlier orchestrator to its end. */
  attach?(jobId: string, spec: ReplicateSpec): Promise<ReplicateExecution>;
  /** True if the job is still queued or running. */
  alive?(jobId: string): Promise<boolean>;
  /** Ends a job left by an earlier orchestrator. */
  cancel?(jobId: string): Promise<void>;
  /**
   * A job still queued or running for this replicate (by its name and log) that an earlier
   * orchestrator submitted but was killed before recording.
   */
  findJob?(name: string, logPath: string): Promise<string | null>;
  setAside(): SetAside[];
}

/** No slot is left to run on: every one was set aside. The run cannot go on. */
export class NoSlotError extends Error {}

/** Where a run's replicates go, as the flags chose it; stored with the run for `resume`. */
export interface ExecutorChoice {
  kind: string;
  [option: string]: unknown;
}

/** What an executor is built from besides its choice. */
export interface ExecutorSetup<Settings = unknown> {
  /** The kind's own section of the task file, validated by its schema; undefined if it has none. */
  settings: Settings;
  /** GPUs one replicate needs (the task's resources.gpus). */
  gpusPerReplicate: number;
  /** Told when a slot is set aside. */
  onSetAside: (setAside: SetAside) => void;
}

/**
 * One kind of executor, as the registry in `index.ts` lists it.
 * Contract: `choose` throws a UsageError naming the flag when the flags do not fit the
 * kind; `create` throws only for an operator's mistake (no slot can hold a replicate).
 */
export interface ExecutorKind {
  readonly name: string;
  /** Its section of the task file (the key is the kind's name), when it has settings. */
  readonly settings?: z.ZodType;
  readonly flags: readonly Flag[];
  choose(values: FlagValues): ExecutorChoice;
  /** Refuses, before anything runs, a choice that cannot run the task's replicates. */
  check?(choice: ExecutorChoice, gpusPerReplicate: number): void;
  create(choice: ExecutorChoice, setup: ExecutorSetup): Executor;
}

/**
 * Declares a kind with its own types for the choice and the settings; the registry holds
 * it erased. The casts are safe: the choice comes from `choose` (or the run's record of
 * it), the settings from the task file validated by `settings`.
 */
export function defineExecutor<C extends ExecutorChoice, S = undefined>(kind: {
  name: string;
  settings?: z.ZodType<S>;
  flags: readonly Flag[];
  choose(values: FlagValues): C;
  check?(choice: C, gpusPerReplicate: number): void;
  create(choice: C, setup: ExecutorSetup<S>): Executor;
}): ExecutorKind {
  const { check } = kind;
  return {
    ...kind,
    ...(check ? { check: (choice, gpus) => check(choice as C, gpus) } : {}),
    create: (choice, setup) => kind.create(choice as C, setup as ExecutorSetup<S>),
  };
}
