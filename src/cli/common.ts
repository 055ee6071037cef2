import { resolve } from "node:path";
import type { Command } from "commander";
import { EXIT, TaskFileError, UsageError } from "../errors.js";
import type { ExecutorChoice } from "../executors/executor.js";
import { chooseExecutor, executorFlags as EXECUTOR_FLAGS } from "../executors/index.js";
import { SANDBOX_MODES, type SandboxMode } from "../executors/sandbox.js";
import type { SwarmChoice } from "../orchestrator/index.js";
import { type Emit, type SessionResult, type Stops, stopOnSignals } from "../orchestrator/index.js";
import { printReportAfterRun } from "../report/after-run.js";
import { formatSummary } from "../report/status.js";
import { createTerminalDisplay } from "../report/terminal.js";
import {
  type Flag,
  type FlagValues,
  nonNegativeInt,
  positiveInt,
  positiveNumber,
} from "../util/flags.js";

export { positiveInt, positiveNumber };

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
  // resolve("") is the current folder: `-C "$TASK"` with $TASK unset would work wherever the
  // shell happens to be. Refused as a missing folder is.
  if (dir === "") throw new TaskFileError("-C needs a folder: give -C the task's folder");
  return resolve(dir ?? process.cwd());
}

/** The display and the Ctrl-C handling every command that drives a run shares. */
export function session(): { emit: Emit; signal: AbortSignal; close: () => void } {
  const display = createTerminalDisplay(process.stdout, process.stdout.isTTY === true);
  const stop = stopOnSignals(() =>
    process.stderr.write(
      "\nstopping: ending the running replicates (Ctrl-C again to quit at once)\n",
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

/** Options for flags that kinds declare as data. */
export function addFlags(command: Command, flags: readonly Flag[]): Command {
  for (const flag of flags)
    if (flag.parse) command.option(flag.flags, flag.description, flag.parse);
    else command.option(flag.flags, flag.description);
  return command;
}

/** The flags that choose where replicates run: each executor kind's own. */
export function executorFlags(command: Command): Command {
  return addFlags(command, EXECUTOR_FLAGS());
}

/** What the executor flags chose, or undefined when none is given (resume keeps the run's own). */
export const executorChoice: (values: FlagValues) => ExecutorChoice | undefined = chooseExecutor;

/** How far researchers propose ahead, for the commands that drive a run's loop. */
export function lookaheadFlag(command: Command): Command {
  return command.option(
    "--lookahead <n>",
    "trials proposed ahead of free slots (default: one per slot; none for mutate unless the task overlaps)",
    nonNegativeInt,
  );
}

/** `--sandbox`, for whatever runs replicates; `existing`: for a command that goes on with a run. */
export function sandboxFlag(command: Command, existing = false): Command {
  const fallback = "the task file's sandbox, else auto: bubblewrap where it works";
  return command.option(
    "--sandbox <mode>",
    `what bounds replicates and researchers: ${SANDBOX_MODES.join(", ")} (default: ${existing ? `the mode the run was started with, else ${fallback}` : fallback})`,
    (value: string) => {
      if (!(SANDBOX_MODES as readonly string[]).includes(value))
        throw new UsageError(`--sandbox: "${value}" is not one of ${SANDBOX_MODES.join(", ")}`);
      return value as SandboxMode;
    },
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

/** After `run` or `resume`: the summary, the report, and an exit code that says how it ended. */
export async function afterSession(root: string, result: SessionResult): Promise<void> {
  process.stdout.write(`\n${formatSummary(result.summary)}\n`);
  await printReportAfterRun(root, result.summary.run.tag);
  // A stop is not an end: the run goes on from where it is, its trials so far kept.
  if (result.status === "stopped" && !result.byRule)
    process.stdout.write(`to go on: autoresearch resume --tag ${result.summary.run.tag}\n`);
  if (result.status === "stopped") process.exitCode = result.byRule ? EXIT.stopRule : 130;
  else if (result.status === "failed") process.exitCode = 1;
}

/** `--swarm` and its companions, for `run` and `resume`. */
export function swarmFlags(command: Command): Command {
  return command
    .option(
      "--swarm <url>",
      "take part in the swarm whose database is at postgres://role@host:port/db (the password from PGPASSWORD or ~/.pgpass)",
    )
    .option(
      "--hardware-class <name>",
      "with --swarm: what this host's replicates run on (default: the GPU model x GPUs per replicate, or the CPU model)",
    )
    .option(
      "--swarm-remote <url>",
      "with --swarm: the swarm's git remote as this host reaches it (default: the one swarm init recorded)",
    )
    .option(
      "--stages <list>",
      "with --swarm: the task's stages this host can run (default: all); a host that only searches names the first, e.g. d8",
    );
}

/** What the swarm flags chose, as run's and resume's options (none without --swarm). */
export function swarmOption(o: {
  swarm?: string;
  hardwareClass?: string;
  swarmRemote?: string;
  stages?: string;
}): {
  swarm?: SwarmChoice;
} {
  if (!o.swarm) {
    if (o.hardwareClass || o.swarmRemote || o.stages)
      throw new UsageError("--hardware-class, --swarm-remote and --stages go with --swarm <url>");
    return {};
  }
  const stages = o.stages
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (o.stages !== undefined && !stages?.length)
    throw new UsageError("--stages: give stage names of the task, such as d12,d24");
  return {
    swarm: {
      url: databaseUrl("--swarm", o.swarm),
      ...(o.hardwareClass ? { hardwareClass: o.hardwareClass } : {}),
      ...(o.swarmRemote ? { remote: o.swarmRemote } : {}),
      ...(stages ? { stages } : {}),
    },
  };
}

/** A PostgreSQL URL, checked for its form before anything connects. */
export function databaseUrl(flag: string, value: string): string {
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {
    // Said below, without the value (it may hold a password).
  }
  if (!url || !["postgres:", "postgresql:"].includes(url.protocol))
    throw new UsageError(
      `${flag}: not a database URL; give postgres://role@host:port/database (the password in PGPASSWORD or ~/.pgpass)`,
    );
  return value;
}
