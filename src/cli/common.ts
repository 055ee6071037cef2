import { resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { UsageError } from "../errors.js";
import { parseGpus } from "../executors/gpus.js";
import type { Emit } from "../orchestrator/events.js";
import type { Stops } from "../orchestrator/loop.js";
import type { ExecutorChoice } from "../orchestrator/session.js";
import { stopOnSignals } from "../orchestrator/stop.js";
import { createTerminalDisplay } from "../report/terminal.js";

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`must be a whole number ≥ 1, got "${value}"`);
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`must be a number > 0, got "${value}"`);
  return n;
}

/** --record-responses and --fake-responses, which exclude each other. */
export function traffic(o: { recordResponses?: string; fakeResponses?: string }): {
  record?: string;
  replay?: string;
} {
  if (o.recordResponses && o.fakeResponses)
    throw new UsageError("--record-responses and --fake-responses cannot be used together");
  return {
    ...(o.recordResponses ? { record: resolve(o.recordResponses) } : {}),
    ...(o.fakeResponses ? { replay: resolve(o.fakeResponses) } : {}),
  };
}

export function taskRoot(dir: string | undefined): string {
  return resolve(dir ?? process.cwd());
}

/** The display and the Ctrl-C handling every command that drives a run shares. */
export function session(): { emit: Emit; signal: AbortSignal; close: () => void } {
  const display = createTerminalDisplay(process.stdout, process.stdout.isTTY === true);
  const stop = stopOnSignals(() =>
    process.stderr.write(
      "\nstopping: ending the running replicate (Ctrl-C again to quit at once)\n",
    ),
  );
  return {
    emit: display.emit,
    signal: stop.signal,
    close: () => {
      display.close();
      stop.dispose();
    },
  };
}

/** The flags that choose where replicates run, for `run` and `resume`. */
export function executorFlags(command: Command): Command {
  return command
    .option("--executor <kind>", "where replicates run: local or slurm")
    .option(
      "--gpus <list>",
      'GPU slots on this machine: "all" (from nvidia-smi) or indices such as 0,1,3',
    )
    .option("--slots <n>", "local CPU slots, or SLURM jobs at once", positiveInt)
    .option("--partition <name>", "SLURM partition")
    .option("--account <name>", "SLURM account")
    .option("--qos <name>", "SLURM quality of service")
    .option(
      "--sbatch-arg <flag>",
      "an extra sbatch flag (repeatable)",
      (v: string, all: string[] = []) => [...all, v],
    )
    .option(
      "--lookahead <n>",
      "trials proposed ahead of free slots (default: one per slot, none for mutate)",
      nonNegativeInt,
    );
}

/** The budget and the stop rules, for `run` and `resume`. */
export function stopFlags(command: Command): Command {
  return command
    .option(
      "--budget-usd <usd>",
      'start no new trial once researchers\' spending plus GPU time (at --gpu-hour-usd) reaches this many dollars ("none" on resume: no budget)',
      budget,
    )
    .option("--max-usd <usd>", "the earlier name of --budget-usd", budget)
    .option("--gpu-hour-usd <usd>", "what one GPU-hour costs, for --budget-usd", positiveNumber)
    .option(
      "--max-failures <n>",
      "stop after this many trials in a row crash, time out or are invalid (default 10; 0: never)",
      nonNegativeInt,
    )
    .option(
      "--plateau <n>",
      "finish after this many trials in a row without a keep (0 on resume: never)",
      nonNegativeInt,
    );
}

/** A dollar amount, or "none" so that a resume can drop the budget. */
function budget(value: string): number | "none" {
  return value === "none" ? value : positiveNumber(value);
}

/**
 * The budget the flags set: a number, null to have none, undefined when not given (resume
 * keeps the run's own).
 */
export function budgetChoice(o: {
  budgetUsd?: number | "none";
  maxUsd?: number | "none";
}): number | null | undefined {
  if (o.budgetUsd !== undefined && o.maxUsd !== undefined)
    throw new UsageError("--max-usd is the earlier name of --budget-usd: give only one");
  const given = o.budgetUsd ?? o.maxUsd;
  return given === "none" ? null : given;
}

/** The stop rules the flags set; those not given are left to the run's own or the defaults. */
export function stopsChoice(o: {
  gpuHourUsd?: number;
  maxFailures?: number;
  plateau?: number;
}): Partial<Stops> {
  return {
    ...(o.gpuHourUsd !== undefined ? { gpuHourUsd: o.gpuHourUsd } : {}),
    ...(o.maxFailures !== undefined ? { maxFailures: o.maxFailures } : {}),
    ...(o.plateau !== undefined ? { plateau: o.plateau || null } : {}),
  };
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`must be a whole number ≥ 0, got "${value}"`);
  return n;
}

interface ExecutorFlags {
  executor?: string;
  gpus?: string;
  slots?: number;
  partition?: string;
  account?: string;
  qos?: string;
  sbatchArg?: string[];
}

/** The executor the flags ask for, or undefined when none is given (resume keeps the run's own). */
export function executorChoice(o: ExecutorFlags): ExecutorChoice | undefined {
  const kind =
    o.executor ??
    (o.partition || o.account || o.qos || o.sbatchArg
      ? "slurm"
      : o.gpus || o.slots
        ? "local"
        : undefined);
  if (kind === undefined) return undefined;
  if (kind === "slurm") {
    if (o.gpus)
      throw new UsageError(
        "--gpus is for the local executor; SLURM jobs ask for resources.gpus of the task file",
      );
    return {
      kind: "slurm",
      ...(o.slots ? { jobs: o.slots } : {}),
      ...(o.partition ? { partition: o.partition } : {}),
      ...(o.account ? { account: o.account } : {}),
      ...(o.qos ? { qos: o.qos } : {}),
      ...(o.sbatchArg ? { sbatchArgs: o.sbatchArg } : {}),
    };
  }
  if (kind !== "local") throw new UsageError(`--executor: "${kind}" is not local or slurm`);
  if (o.gpus && o.slots)
    throw new UsageError("--gpus and --slots exclude each other: GPU slots come from --gpus");
  return {
    kind: "local",
    ...(o.gpus ? { gpus: parseGpus(o.gpus) } : {}),
    ...(o.slots ? { slots: o.slots } : {}),
  };
}
