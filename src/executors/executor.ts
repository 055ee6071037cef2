import type { ProcessResult } from "./process.js";

/** One place a replicate can run: a CPU share or a set of GPUs. */
export interface Slot {
  id: string;
  /** GPU indices exported as CUDA_VISIBLE_DEVICES, or null for a CPU slot. */
  gpus: string[] | null;
}

export interface ReplicateSpec {
  command: string;
  cwd: string;
  /** The full environment except the slot's own variables. */
  env: Record<string, string>;
  logPath: string;
  logLimit: number;
  timeoutMs: number;
  killGraceMs: number;
  signal: AbortSignal;
  /** Called when the replicate has a slot and a process, before it can outlive the caller. */
  onStart: (slot: Slot, pid: number) => void;
}

export interface ReplicateExecution {
  slot: Slot;
  process: ProcessResult;
}

/**
 * Where a trial's command runs.
 * Contract: `run` waits for a free slot, never runs two replicates on one slot, and
 * resolves with how the process ended; failures of the experiment are never rejections.
 */
export interface Executor {
  readonly slots: readonly Slot[];
  run(spec: ReplicateSpec): Promise<ReplicateExecution>;
}
