import { UsageError } from "../errors.js";
import { type Flag, type FlagValues, flagName } from "../util/flags.js";
import type { ExecutorChoice, ExecutorKind } from "./executor.js";
import { localExecutor } from "./local.js";
import { slurmExecutor } from "./slurm.js";

/** Every executor kind; the first is the default. A new kind is its module and one line here. */
export const EXECUTORS: readonly ExecutorKind[] = [localExecutor, slurmExecutor];

export function executorKind(name: string): ExecutorKind {
  const kind = EXECUTORS.find((k) => k.name === name);
  if (!kind)
    throw new UsageError(
      `--executor: "${name}" is not one of ${EXECUTORS.map((k) => k.name).join(", ")}`,
    );
  return kind;
}

/** The flags of every kind, each name once, after `--executor` itself. */
export function executorFlags(): Flag[] {
  const flags: Flag[] = [
    {
      flags: "--executor <kind>",
      description: `where replicates run: ${EXECUTORS.map((k) => k.name).join(" or ")}`,
    },
  ];
  for (const kind of EXECUTORS)
    for (const flag of kind.flags)
      if (!flags.some((f) => flagName(f) === flagName(flag))) flags.push(flag);
  return flags;
}

/**
 * The executor the flags ask for, or undefined when none of its flags is given (resume
 * keeps the run's own). Without `--executor`, a flag only one kind has picks that kind;
 * flags that several kinds share pick the default.
 */
export function chooseExecutor(values: FlagValues): ExecutorChoice | undefined {
  const given = (kind: ExecutorKind) =>
    kind.flags.filter((f) => values[flagName(f)] !== undefined).map(flagName);
  const own = (kind: ExecutorKind) =>
    given(kind).filter((name) =>
      EXECUTORS.every((k) => k === kind || !k.flags.some((f) => flagName(f) === name)),
    );
  const named = values.executor as string | undefined;
  const claiming = EXECUTORS.filter((k) => own(k).length > 0);
  const kind = named
    ? executorKind(named)
    : (claiming[0] ?? (EXECUTORS.some((k) => given(k).length > 0) ? EXECUTORS[0] : undefined));
  // A flag of another kind would be dropped without a word: say which kind it belongs to.
  for (const other of claiming)
    if (kind && other !== kind) {
      const flags = own(other).map(dashed);
      throw new UsageError(
        `${flags.join(", ")} ${flags.length > 1 ? "are" : "is"} for the ${other.name} executor, not ${kind.name}: choose one (--executor ${kind.name} or --executor ${other.name})`,
      );
    }
  return kind?.choose(values);
}

/** The flag as typed, from its camelCase name. */
const dashed = (name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
