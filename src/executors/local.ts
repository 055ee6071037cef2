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

/** A replicate placed on a slot: the one whose turn it is, or the one waiting for it. */
interface Holder {
  turn: Promise<void>;
  grant: () => void;
  /** Let through its gate: in its timed work, its memory taken, so another may prepare beside it. */
  passed: boolean;
}

interface SlotState {
  slot: Slot;
  /** The replicate running on it, then at most one started early (gated) waiting for its turn. */
  holders: Holder[];
  /** Set aside, or held while its crashes are judged: nothing new is placed on it. */
  out: boolean;
}

/**
 * Runs replicates as local processes, with the slot's GPUs as CUDA_VISIBLE_DEVICES. A slot
 * runs one replicate at a time; a gated one (its command waits at AR_GATE) may start
 * early on a slot whose replicate is in its timed work, and prepares (imports, data,
 * compiling) while that one trains, its own timed work waiting for the slot. A GPU slot
 * whose replicates keep crashing right at start while the other slots succeed (a broken
 * or occupied card) is set aside and reported.
 */
export function createLocalExecutor(slots: Slot[], options: LocalOptions = {}): Executor {
  const states: SlotState[] = slots.map((slot) => ({ slot, holders: [], out: false }));
  const waiting: {
    gated: boolean;
    resolve: (placed: [SlotState, Holder]) => void;
    reject: (error: Error) => void;
  }[] = [];
  const asideList: SetAside[] = [];
  const early = new Map<string, { count: number; successesAtFirst: number }>();
  let successes = 0;

  const usable = () => slots.length - asideList.length;
  const place = (state: SlotState): [SlotState, Holder] => {
    let grant: () => void = () => undefined;
    const turn = new Promise<void>((resolve) => {
      grant = resolve;
    });
    const holder: Holder = { turn, grant, passed: false };
    state.holders.push(holder);
    if (state.holders.length === 1) grant();
    return [state, holder];
  };
  /** Where a replicate can go now: a free slot, else (gated) one whose replicate trains alone. */
  const placeFor = (gated: boolean): SlotState | undefined =>
    states.find((s) => !s.out && s.holders.length === 0) ??
    (gated
      ? states.find((s) => !s.out && s.holders.length === 1 && s.holders[0]!.passed)
      : undefined);
  /** Places waiting replicates in order; one that cannot be placed keeps those behind it waiting. */
  const dispatch = () => {
    while (waiting.length) {
      const state = placeFor(waiting[0]!.gated);
      if (!state) return;
      waiting.shift()!.resolve(place(state));
    }
  };
  const acquire = (gated: boolean) =>
    new Promise<[SlotState, Holder]>((resolve, reject) => {
      if (usable() === 0) return reject(new NoSlotError(noSlotMessage(asideList)));
      waiting.push({ gated, resolve, reject });
      dispatch();
    });
  const leave = (state: SlotState, holder: Holder) => {
    const first = state.holders[0] === holder;
    state.holders.splice(state.holders.indexOf(holder), 1);
    if (first) state.holders[0]?.grant();
  };

  /**
   * Slots with a streak of early crashes but no success elsewhere yet. A slot that crashes
   * in milliseconds would otherwise take trial after trial while a good slot runs one
   * replicate, and end the run through --max-failures before that replicate can succeed.
   */
  const held: SlotState[] = [];

  const putAside = (state: SlotState) => {
    state.out = true;
    const entry = {
      slot: state.slot.id,
      reason: `${early.get(state.slot.id)?.count ?? EARLY_CRASHES} replicates in a row crashed within ${EARLY_MS / 1000}s of starting on GPU ${state.slot.gpus?.join(",")} while other slots succeeded`,
    };
    asideList.push(entry);
    options.onSetAside?.(entry);
    if (usable() === 0)
      for (const w of waiting.splice(0)) w.reject(new NoSlotError(noSlotMessage(asideList)));
  };

  /** Judges a slot by how its replicate ended: it may be set aside or held out. */
  const checkHealth = (state: SlotState, crashedEarly: boolean, ok: boolean): void => {
    const { slot } = state;
    if (ok) successes++;
    // A success elsewhere shows the code runs, so the held slots' crashes were their own;
    // a failure elsewhere leaves the code suspect, and the held slots go back to work.
    for (const h of held.splice(0)) {
      if (ok) putAside(h);
      else h.out = false;
    }
    if (ok) {
      early.delete(slot.id);
      return;
    }
    if (!slot.gpus || !crashedEarly) return;
    const record = early.get(slot.id) ?? { count: 0, successesAtFirst: successes };
    record.count++;
    early.set(slot.id, record);
    if (record.count < EARLY_CRASHES) return;
    if (successes !== record.successesAtFirst) {
      putAside(state);
      return;
    }
    // Only another slot still in use can bring the verdict; without one, holding would idle it for nothing.
    if (usable() - held.length > 1) {
      state.out = true;
      held.push(state);
    }
  };

  return {
    kind: "local",
    slots,
    setAside: () => [...asideList],
    async run(spec: ReplicateSpec): Promise<ReplicateExecution> {
      const gated = spec.gated === true;
      const [state, holder] = await acquire(gated);
      const { slot } = state;
      try {
        const env = { ...spec.env };
        if (slot.gpus) env.CUDA_VISIBLE_DEVICES = slot.gpus.join(",");
        // Its turn has come already: nothing trains beside it for work ahead of the turn to
        // hide behind, so the program may skip that work (it still asks at the gate).
        if (gated && state.holders[0] === holder) env.AR_GATE_OPEN = "1";
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
            if (!gated) spec.onRunning?.(Date.now());
          },
          ...(gated
            ? {
                gate: {
                  turn: holder.turn,
                  onTurn: () => spec.onRunning?.(Date.now()),
                  onPass: () => {
                    holder.passed = true;
                    dispatch();
                  },
                },
              }
            : {}),
        });
        const failed =
          !process.aborted &&
          !process.timedOut &&
          (process.exitCode !== 0 || process.signal !== null);
        // One that ended before its turn never had the slot: it says nothing of the card.
        if (!process.beforeTurn)
          checkHealth(state, failed && process.durationMs < EARLY_MS, !failed && !process.aborted);
        return { slot, process };
      } finally {
        leave(state, holder);
        dispatch();
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
