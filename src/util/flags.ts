import { InvalidArgumentError } from "commander";

/**
 * A command-line flag a kind adds to the commands that start or resume a run. Kinds
 * declare their flags as data; the CLI turns them into options, once per name.
 */
export interface Flag {
  /** As the CLI writes it: "--partition <name>". */
  flags: string;
  description: string;
  /** Turns the given text into the value; throws InvalidArgumentError for a bad one. */
  parse?: (value: string, previous: unknown) => unknown;
}

/** The values the flags were given, by their camelCase names ("--sbatch-arg" → sbatchArg). */
export type FlagValues = Record<string, unknown>;

/** The camelCase name under which a flag's value is found. */
export function flagName(flag: Flag): string {
  const long = /--([\w-]+)/.exec(flag.flags)?.[1] ?? flag.flags;
  return long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`must be a whole number ≥ 1, got "${value}"`);
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`must be a whole number ≥ 0, got "${value}"`);
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`must be a number > 0, got "${value}"`);
  return n;
}

/** A flag given several times, as a list. */
export const repeated = (value: string, previous: unknown): string[] => [
  ...(Array.isArray(previous) ? (previous as string[]) : []),
  value,
];
