import type { Executor, ReplicateExecution, ReplicateSpec, Slot } from "./executor.js";
import { runProcess } from "./process.js";

/** Slots for this machine: one per GPU group when GPUs are given, else `count` CPU slots. */
export function localSlots(options: {
  gpus?: string[];
  gpusPerReplicate?: number;
  count?: number;
}): Slot[] {
  const per = Math.max(1, options.gpusPerReplicate ?? 1);
  if (options.gpus?.length) {
    const slots: Slot[] = [];
    for (let i = 0; i + per <= options.gpus.length; i += per)
      slots.push({
        id: `gpu${options.gpus.slice(i, i + per).join("+")}`,
        gpus: options.gpus.slice(i, i + per),
      });
    return slots;
  }
  return Array.from({ length: Math.max(1, options.count ?? 1) }, (_, i) => ({
    id: `cpu${i}`,
    gpus: null,
  }));
}

/** Runs replicates as local processes, one at a time per slot. */
export function createLocalExecutor(slots: Slot[]): Executor {
  const free = [...slots];
  const waiting: ((slot: Slot) => void)[] = [];
  const acquire = () =>
    new Promise<Slot>((resolve) => {
      const slot = free.shift();
      if (slot) resolve(slot);
      else waiting.push(resolve);
    });
  const release = (slot: Slot) => {
    const next = waiting.shift();
    if (next) next(slot);
    else free.push(slot);
  };

  return {
    slots,
    async run(spec: ReplicateSpec): Promise<ReplicateExecution> {
      const slot = await acquire();
      try {
        const env = { ...spec.env };
        if (slot.gpus) env.CUDA_VISIBLE_DEVICES = slot.gpus.join(",");
        const process = await runProcess({
          command: spec.command,
          cwd: spec.cwd,
          env,
          logPath: spec.logPath,
          logLimit: spec.logLimit,
          timeoutMs: spec.timeoutMs,
          killGraceMs: spec.killGraceMs,
          signal: spec.signal,
          onSpawn: (pid) => spec.onStart(slot, pid),
        });
        return { slot, process };
      } finally {
        release(slot);
      }
    },
  };
}
