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
  readonly kind: "local" | "slurm";
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
