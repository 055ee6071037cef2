import { z } from "zod";
import { parseDuration, parseSize } from "./units.js";

/**
 * Builders for the task file's fields, shared by the task's own schema and the settings
 * of each executor, judge and researcher kind. Every message says what is allowed; the
 * loader adds the field's path, its position in the file and the value it found.
 */

type Issue = { code: string; input?: unknown; keys?: string[] };

/** A mapping with exactly these fields; an unknown one is named with the allowed ones. */
export function strict<T extends z.ZodRawShape>(shape: T) {
  const allowed = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue: Issue) => {
      if (issue.code === "unrecognized_keys") return `unknown field; allowed fields: ${allowed}`;
      if (issue.code === "invalid_type")
        return issue.input === undefined ? "is required" : `must be a mapping of ${allowed}`;
      return undefined;
    },
  });
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

export const globs = (what: string) =>
  z.array(text("a glob"), { error: required(`a list of globs (${what})`) });

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
