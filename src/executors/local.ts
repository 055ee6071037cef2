import { UsageError } from "../errors.js";
import { positiveInt } from "../util/flags.js";
import {
  defineExecutor,
  type Executor,
  type ExecutorChoice,
  NoSlotError,
  type ReplicateExecution,
  type ReplicateSpec,
  type SetAside,
  type Slot,
} from "./executor.js";
import { parseGpus } from "./gpus.js";
import { runProcess } from "./process.js";

/** Slots for this machine: one per group of `perReplicate` GPUs when GPUs are given, else `count` CPU slots. */
export function localSlots(options: {
  gpus?: string[];
  perReplicate?: number;
  count?: number;
}): Slot[] {
  const per = Math.max(1, options.perReplicate ?? 1);
  if (options.gpus?.length) {
    const slots: Slot[] = [];
    for (let i = 0; i + per <= options.gpus.length; i += per) {
      const gpus = options.gpus.slice(i, i + per);
      slots.push({ id: `gpu${gpus.join("+")}`, gpus });
    }
    return slots;
  }
  return Array.from({ length: Math.max(1, options.count ?? 1) }, (_, i) => ({
    id: `cpu${i}`,
    gpus: null,
  }));
}

/** Crashes this soon after starting count against the slot rather than the code... */
const EARLY_MS = 60_000;
/** ...when this many in a row happen on one slot while other slots succeed. */
const EARLY_CRASHES = 3;

export interface LocalOptions {
  /** Told when a slot is set aside. */
  onSetAside?: (setAside: SetAside) => void;
}

/**
 * Runs replicates as local processes, one at a time per slot, with the slot's GPUs as
 * CUDA_VISIBLE_DEVICES. A GPU slot whose replicates keep crashing right at start while
 * the other slots succeed (a broken or occupied card) is set aside and reported.
 */
export function createLocalExecutor(slots: Slot[], options: LocalOptions = {}): Executor {
  const free = [...slots];
  const waiting: { resolve: (slot: Slot) => void; reject: (error: Error) => void }[] = [];
  const asideList: SetAside[] = [];
  const early = new Map<string, { count: number; successesAtFirst: number }>();
  let successes = 0;

  const usable = () => slots.length - asideList.length;
  const acquire = () =>
    new Promise<Slot>((resolve, reject) => {
      if (usable() === 0) return reject(new NoSlotError(noSlotMessage(asideList)));
      const slot = free.shift();
      if (slot) resolve(slot);
      else waiting.push({ resolve, reject });
    });
  const release = (slot: Slot) => {
    const next = waiting.shift();
    if (next) next.resolve(slot);
    else free.push(slot);
  };

  /**
   * Slots with a streak of early crashes but no success elsewhere yet. A slot that crashes
   * in milliseconds would otherwise take trial after trial while a good slot runs one
   * replicate, and end the run through --max-failures before that replicate can succeed.
   */
  const held: Slot[] = [];

  const putAside = (slot: Slot) => {
    const entry = {
      slot: slot.id,
      reason: `${early.get(slot.id)?.count ?? EARLY_CRASHES} replicates in a row crashed within ${EARLY_MS / 1000}s of starting on GPU ${slot.gpus?.join(",")} while other slots succeeded`,
    };
    asideList.push(entry);
    options.onSetAside?.(entry);
    if (usable() === 0)
      for (const w of waiting.splice(0)) w.reject(new NoSlotError(noSlotMessage(asideList)));
  };

  /** True if the slot is now set aside or held, and so not to be released. */
  const checkHealth = (slot: Slot, crashedEarly: boolean, ok: boolean): boolean => {
    if (ok) successes++;
    // A success elsewhere shows the code runs, so the held slots' crashes were their own;
    // a failure elsewhere leaves the code suspect, and the held slots go back to work.
    for (const h of held.splice(0)) {
      if (ok) putAside(h);
      else release(h);
    }
    if (ok) {
      early.delete(slot.id);
      return false;
    }
    if (!slot.gpus || !crashedEarly) return false;
    const record = early.get(slot.id) ?? { count: 0, successesAtFirst: successes };
    record.count++;
    early.set(slot.id, record);
    if (record.count < EARLY_CRASHES) return false;
    if (successes !== record.successesAtFirst) {
      putAside(slot);
      return true;
    }
    // Only another slot still in use can bring the verdict; without one, holding would idle it for nothing.
    if (usable() - held.length > 1) {
      held.push(slot);
      return true;
    }
    return false;
  };

  return {
    kind: "local",
    slots,
    setAside: () => [...asideList],
    async run(spec: ReplicateSpec): Promise<ReplicateExecution> {
      const slot = await acquire();
      let aside = false;
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
          sandbox: spec.sandbox,
          maxFileSize: spec.maxFileSize,
          onSpawn: (pid) => {
            spec.onStart({ slot, pid });
            spec.onRunning?.(Date.now());
          },
        });
        const failed =
          !process.aborted &&
          !process.timedOut &&
          (process.exitCode !== 0 || process.signal !== null);
        aside = checkHealth(
          slot,
          failed && process.durationMs < EARLY_MS,
          !failed && !process.aborted,
        );
        return { slot, process };
      } finally {
        if (!aside) release(slot);
      }
    },
  };
}

function noSlotMessage(aside: SetAside[]): string {
  return `no slot is left to run on: ${aside.map((a) => `${a.slot} (${a.reason})`).join("; ")}`;
}

/** The local kind: slots on this machine, one per GPU group (`--gpus`) or CPU share (`--slots`). */
export const localExecutor = defineExecutor({
  name: "local",
  flags: [
    {
      flags: "--gpus <list>",
      description: 'GPU slots on this machine: "all" (from nvidia-smi) or indices such as 0,1,3',
    },
    {
      flags: "--slots <n>",
      description: "local CPU slots, or SLURM jobs at once",
      parse: positiveInt,
    },
  ],
  choose(values): LocalChoice {
    const gpus = values.gpus as string | undefined;
    const count = values.slots as number | undefined;
    if (gpus && count)
      throw new UsageError("--gpus and --slots exclude each other: GPU slots come from --gpus");
    return {
      kind: "local",
      ...(gpus ? { gpus: parseGpus(gpus) } : {}),
      ...(count ? { slots: count } : {}),
    };
  },
  check(choice, gpusPerReplicate) {
    // Without GPU slots, a GPU task would train on the CPU until the kernel kills it.
    if (choice.gpus?.length && choice.gpus.length < gpusPerReplicate)
      throw new UsageError(
        `--gpus: ${choice.gpus.length} GPU(s) cannot hold one replicate of ${gpusPerReplicate} GPUs (resources.gpus); give at least ${gpusPerReplicate}`,
      );
    if (gpusPerReplicate > 0 && !choice.gpus?.length)
      throw new UsageError(
        `the task asks for ${gpusPerReplicate} GPU${gpusPerReplicate > 1 ? "s" : ""} per replicate (resources.gpus) but the run has no GPU slots: add --gpus all (or --gpus 0,1), or set resources.gpus: 0 in the task file to run on the CPU`,
      );
  },
  create(choice, setup) {
    const slots = choice.gpus?.length
      ? localSlots({ gpus: choice.gpus, perReplicate: Math.max(1, setup.gpusPerReplicate) })
      : localSlots({ count: choice.slots ?? 1 });
    if (slots.length === 0)
      throw new UsageError(
        `--gpus: ${choice.gpus?.length} GPUs cannot hold one replicate of ${setup.gpusPerReplicate} GPUs (resources.gpus)`,
      );
    return createLocalExecutor(slots, { onSetAside: setup.onSetAside });
  },
});

interface LocalChoice extends ExecutorChoice {
  kind: "local";
  gpus?: string[] | null;
  slots?: number;
}
