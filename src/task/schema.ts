import { basename } from "node:path";
import { z } from "zod";
import { TaskFileError } from "../errors.js";
import { EXECUTORS } from "../executors/index.js";
import { sandboxSettings } from "../executors/sandbox.js";
import { judgeSettings } from "../judge/index.js";
import { type Constraint, parseConstraint } from "../metrics/constraints.js";
import { researcherSettings } from "../researchers/index.js";
import {
  duration,
  globs,
  inside,
  regex,
  required,
  section,
  size,
  strict,
  text,
} from "../util/fields.js";

/**
 * The task file's schema: every field, its default and its name in code, declared once.
 * The sections of executor, judge and researcher kinds come from their registries.
 */

const metric = section({
  name: text("the metric's name, as the program prints it"),
  goal: z.enum(["minimize", "maximize"], { error: required("one of minimize, maximize") }),
  /** summary: "key: value" lines after the last "---"; json: a JSON object line; regex: last match. */
  parser: z
    .enum(["summary", "json", "regex"], {
      error: required('one of summary ("key: value" lines after ---), json (a JSON line), regex'),
    })
    .default("summary"),
  pattern: regex.optional(),
}).superRefine((m, ctx) => {
  if (m.parser === "regex" && m.pattern === null)
    ctx.addIssue({
      code: "custom",
      path: ["pattern"],
      message: "is required when parser is regex",
    });
  if (m.parser !== "regex" && m.pattern !== null)
    ctx.addIssue({
      code: "custom",
      path: ["pattern"],
      message: "is only used when parser is regex",
    });
});

/** A metric name, or one found by its own regular expression. */
// Each branch keeps its own messages; the shape is settled after the union.
const secondary = z
  .union([text("a metric name"), strict({ name: text("a metric name"), pattern: regex })], {
    error: required("a metric name or { name, pattern } with a regular expression"),
  })
  .transform((s) => (typeof s === "string" ? { name: s, pattern: null as string | null } : s));

const constraint = text('a bound such as "peak_vram_mb < 80000"').transform(
  (value, ctx): Constraint => {
    const parsed = parseConstraint(value);
    if (!parsed) {
      ctx.addIssue({
        code: "custom",
        message: 'must have the form "metric op number" with op one of <, <=, >, >=, ==, !=',
      });
      return z.NEVER;
    }
    return parsed;
  },
);

const resources = section({
  gpus: z.number().int().min(0, "must be 0 or more").default(0),
  cpus: z.number().positive("must be positive").optional(),
});

/** A held-out check run on every new incumbent; `metric` defaults to the task's. */
const verify = z
  .union(
    [
      text("the held-out check's shell command"),
      strict({
        run: text("the held-out check's shell command"),
        metric: text("the metric it prints").optional(),
      }),
    ],
    { error: required("a shell command, or { run, metric }") },
  )
  .transform((v) =>
    typeof v === "string" ? { run: v, metric: null } : { run: v.run, metric: v.metric ?? null },
  );

const values = z.union([z.string(), z.number(), z.boolean()]).transform(String);

/** A rung of the scale ladder: more model, more budget, more seeds. */
const stage = section({
  name: text("the stage's name"),
  env: z.record(z.string(), values).default({}),
  budget: duration("the stage's budget").optional(),
  timeout: duration("the stage's timeout").optional(),
  seeds: z.number().int("must be a whole number").min(1, "must be 1 or more").optional(),
});

const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;
const env = z
  .record(z.string(), values, { error: required("a mapping of variable names to values") })
  .superRefine((vars, ctx) => {
    for (const name of Object.keys(vars)) {
      if (!envName.test(name))
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: "is not a valid environment variable name",
        });
      else if (name.startsWith("AR_"))
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: "AR_ variables are set by the harness",
        });
    }
  });

/** Each executor kind with settings has its own section, named after it. */
const executorSections = Object.fromEntries(
  EXECUTORS.flatMap((k) => (k.settings ? [[k.name, k.settings.prefault({})]] : [])),
) as Record<string, z.ZodType>;

const core = {
  name: text("the task's name").optional(),
  program: inside("the file researchers read first").default("program.md"),
  editable: globs("the files a researcher may change").min(1, "must list at least one glob"),
  protected: globs("files hashed before and after every replicate").default([]),
  setup: text("a shell command run once per machine").optional(),
  run: text("the shell command that runs one replicate"),
  /** Seconds; exported to replicates as AR_TIME_BUDGET. */
  budget: duration("exported as AR_TIME_BUDGET").default(300),
  /** Seconds after which a replicate's process group is ended; by default 2 × budget + 60. */
  timeout: duration("the hard limit for one replicate").optional(),
  kill_grace: duration("time between SIGTERM and SIGKILL").default(10),
  /**
   * The run command waits at AR_GATE before its timed work, so the next replicate starts
   * on a busy slot and prepares while the current one trains (local slots only).
   */
  overlap: z.boolean({ error: required("true or false") }).default(false),
  // The log writer holds the last half in memory.
  log_limit: size
    .refine(
      (bytes) => bytes <= 2 ** 30,
      "must be at most 1GiB (a log is for reading; metrics go last)",
    )
    .default(10_000_000),
  seed: z.number().int("must be an integer").min(0, "must be ≥ 0").default(42),
  metric,
  secondary: z.array(secondary, { error: required("a list of metric names") }).default([]),
  constraints: z.array(constraint, { error: required("a list of bounds") }).default([]),
  resources: resources.prefault({}),
  judge: judgeSettings.prefault({}),
  verify: verify.optional(),
  /** Globs of files a replicate may create or change besides the editable ones. */
  outputs: globs("files a replicate may write besides the editable ones").default([]),
  /** The scale ladder; the first stage is where the search runs. */
  stages: z
    .array(stage, { error: required("a list of stages") })
    .min(1, "must list at least one stage")
    .superRefine((list, ctx) => {
      const names = list.map((s) => s.name);
      const twice = names.find((n, i) => names.indexOf(n) !== i);
      if (twice) ctx.addIssue({ code: "custom", message: `names the stage "${twice}" twice` });
    })
    .optional(),
  /** Promote to the next stage automatically after this many keeps. */
  promote_every: z.number().int("must be a whole number").min(1, "must be 1 or more").optional(),
  env: env.default({}),
  /** Variables of the harness's environment replicates get besides the basics (names or globs). */
  pass_env: z
    .array(text("a variable name or a glob such as MY_*"), {
      error: required("a list of variable names or globs"),
    })
    .default([]),
  /** What bounds replicates and researchers: bubblewrap where it works, by default. */
  sandbox: sandboxSettings.prefault({}),
};

// A kind named after a core field would silently replace that field's schema.
for (const name of Object.keys(executorSections))
  if (name in core || name === "researcher")
    throw new Error(`the executor kind "${name}" has the name of a task-file field; rename it`);

export const taskFileSchema = section({
  ...core,
  ...executorSections,
  researcher: researcherSettings.prefault({}),
});

export type TaskFile = z.output<typeof taskFileSchema>;

/**
 * The loaded task: the file's settings and the values derived from them (the timeout,
 * the stages, the held-out metric), with where the task lives.
 */
export function settle(t: TaskFile, root: string, file: string) {
  const timeout = t.timeout ?? t.budget * 2 + 60;
  if (timeout <= t.budget)
    throw new TaskFileError(
      `${file}: timeout: must be longer than budget (${t.budget}s), got ${timeout}s`,
    );
  return {
    ...t,
    root,
    file,
    name: t.name ?? basename(root),
    timeout,
    verify: t.verify && { run: t.verify.run, metric: t.verify.metric ?? t.metric.name },
    stages: (
      t.stages ?? [{ name: "default", env: {}, budget: null, timeout: null, seeds: null }]
    ).map((s) => {
      const budget = s.budget ?? t.budget;
      if (s.timeout !== null && s.timeout <= budget)
        throw new TaskFileError(
          `${file}: stages: "${s.name}": timeout must be longer than its budget (${budget}s), got ${s.timeout}s`,
        );
      return {
        name: s.name,
        env: s.env,
        budget,
        timeout: s.timeout ?? (s.budget ? budget * 2 + 60 : timeout),
        seeds: s.seeds ?? t.judge.seeds,
      };
    }),
  };
}
