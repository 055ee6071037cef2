import { z } from "zod";
import { parseDuration, parseSize } from "./units.js";

/**
 * Builders for the task file's fields, shared by the task's own schema and the settings
 * of each executor, judge and researcher kind. Every message says what is allowed; the
 * loader adds the field's path, its position in the file and the value it found.
 */

type Issue = { code: string; input?: unknown; keys?: string[] };

/**
 * A mapping with exactly these fields; an unknown one is named with the allowed ones and
 * the closest of them. zod reports all unknown fields of a mapping in one issue, so its
 * message has one line per key, in the order of the issue's `keys`.
 */
export function strict<T extends z.ZodRawShape>(shape: T) {
  const names = Object.keys(shape);
  const allowed = names.join(", ");
  return z.strictObject(shape, {
    error: (issue: Issue) => {
      if (issue.code === "unrecognized_keys")
        return (issue.keys ?? [])
          .map((key) => {
            const near = closest(key, names);
            return `unknown field; allowed fields: ${allowed}${near ? `; did you mean ${near}?` : ""}`;
          })
          .join("\n");
      if (issue.code === "invalid_type")
        return issue.input === undefined ? "is required" : `must be a mapping of ${allowed}`;
      return undefined;
    },
  });
}

/** The allowed name a typo most likely meant: within a third of its length in edits, else null. */
export function closest(key: string, names: string[]): string | null {
  const limit = Math.max(1, Math.floor(key.length / 3));
  let best: string | null = null;
  let bestDistance = limit + 1;
  for (const name of names) {
    const d = editDistance(key.toLowerCase(), name.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

/** Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      // A swapped pair (editabel) is one slip, not two.
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  return d[a.length]![b.length]!;
}

type Camel<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Head}${Capitalize<Camel<Tail>>}`
  : S;
export type CamelKeys<T> = { [K in keyof T as K extends string ? Camel<K> : K]: T[K] };

const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * A section of the task file (snake_case, as users write YAML) read into the camelCase
 * settings the code uses: the field, its default and its name in code are declared once.
 * Absent optional fields become null, so a section given as `{}` equals one left out.
 */
export function section<T extends z.ZodRawShape>(shape: T) {
  const keys = Object.keys(shape);
  return strict(shape).transform(
    (value) =>
      Object.fromEntries(
        keys.map((k) => [camel(k), (value as Record<string, unknown>)[k] ?? null]),
      ) as Settled<CamelKeys<z.output<z.ZodObject<T>>>>,
  );
}

/** Optional fields read as null rather than undefined. */
export type Settled<T> = {
  [K in keyof T]-?: undefined extends T[K] ? Exclude<T[K], undefined> | null : T[K];
};

export const required = (what: string) => (issue: Issue) =>
  issue.input === undefined ? `is required: ${what}` : `must be ${what}`;

export const text = (what: string) =>
  z.string({ error: required(what) }).min(1, `must not be empty: ${what}`);

/** A path or glob that stays inside the task: relative, with no `..` segment. */
export const inside = (what: string) =>
  text(what).refine(
    (p) =>
      !p.startsWith("/") &&
      !p.startsWith("~") &&
      !/^[A-Za-z]:/.test(p) &&
      !p.split(/[\\/]/).includes(".."),
    "must stay inside the task: a relative path without `..`",
  );

export const globs = (what: string) =>
  z.array(inside("a glob"), { error: required(`a list of globs (${what})`) });

export const count = (what: string) =>
  z
    .number({ error: required(`a whole number (${what})`) })
    .int("must be a whole number")
    .positive("must be positive");

export const duration = (what: string) =>
  z
    .union([z.string(), z.number()], {
      error: required(`a duration such as "300s", "5m", "1h" or a number of seconds (${what})`),
    })
    .transform((value, ctx) => {
      const seconds = parseDuration(value);
      if (seconds === null || seconds <= 0) {
        ctx.addIssue({
          code: "custom",
          message: `must be a positive duration such as "300s", "5m", "1h" or a number of seconds (${what})`,
        });
        return z.NEVER;
      }
      return seconds;
    });

export const size = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const bytes = parseSize(value);
  if (bytes === null || bytes < 1024) {
    ctx.addIssue({
      code: "custom",
      message: 'must be a size of at least 1KiB such as "10MB" or "512KiB"',
    });
    return z.NEVER;
  }
  return bytes;
});

export const regex = text("a regular expression").superRefine((pattern, ctx) => {
  try {
    new RegExp(pattern);
  } catch (error) {
    ctx.addIssue({
      code: "custom",
      message: `is not a valid regular expression: ${(error as Error).message}`,
    });
  }
});

/** One of `names`, with the list in the message. */
export const oneOf = <const T extends readonly [string, ...string[]]>(names: T) =>
  z.enum(names, { error: required(`one of ${names.join(", ")}`) });
