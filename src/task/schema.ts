import { z } from "zod";
import { type Constraint, parseConstraint } from "../metrics/constraints.js";
import { parseDuration, parseSize } from "./units.js";

/**
 * The task file's schema. Every message says what is allowed; the loader adds the
 * field's path, its position in the file and the value it found.
 */

type Issue = { code: string; input?: unknown; keys?: string[] };

function strict<T extends z.ZodRawShape>(shape: T) {
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

const required = (what: string) => (issue: Issue) =>
  issue.input === undefined ? `is required: ${what}` : `must be ${what}`;

const text = (what: string) =>
  z.string({ error: required(what) }).min(1, `must not be empty: ${what}`);

const globs = (what: string) =>
  z.array(text("a glob"), { error: required(`a list of globs (${what})`) });

const duration = (what: string) =>
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

const size = z.union([z.string(), z.number()]).transform((value, ctx) => {
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

const regex = text("a regular expression").superRefine((pattern, ctx) => {
  try {
    new RegExp(pattern);
  } catch (error) {
    ctx.addIssue({
      code: "custom",
      message: `is not a valid regular expression: ${(error as Error).message}`,
    });
  }
});

const goal = z.enum(["minimize", "maximize"], { error: required("one of minimize, maximize") });
const parser = z.enum(["summary", "json", "regex"], {
  error: required('one of summary ("key: value" lines after ---), json (a JSON line), regex'),
});

const metric = strict({
  name: text("the metric's name, as the program prints it"),
  goal,
  parser: parser.default("summary"),
  pattern: regex.optional(),
}).superRefine((m, ctx) => {
  if (m.parser === "regex" && m.pattern === undefined)
    ctx.addIssue({
      code: "custom",
      path: ["pattern"],
      message: "is required when parser is regex",
    });
  if (m.parser !== "regex" && m.pattern !== undefined)
    ctx.addIssue({
      code: "custom",
      path: ["pattern"],
      message: "is only used when parser is regex",
    });
});

const secondary = z.union(
  [text("a metric name"), strict({ name: text("a metric name"), pattern: regex })],
  { error: required("a metric name or { name, pattern } with a regular expression") },
);

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

const resources = strict({
  gpus: z.number().int().min(0, "must be 0 or more").default(0),
  cpus: z.number().positive("must be positive").optional(),
});

const judge = strict({
  policy: z
    .enum(["greedy", "confirm"], { error: required("one of greedy, confirm") })
    .default("greedy"),
  min_effect: z
    .number({ error: required("a number ≥ 0") })
    .min(0, "must be ≥ 0")
    .default(0),
  seeds: z
    .number()
    .int("must be a whole number")
    .min(1, "must be 1 or more")
    .max(100, "must be 100 or fewer")
    .optional(),
  confidence: z.number().gt(0.5, "must be above 0.5").lt(1, "must be below 1").default(0.95),
});

const verify = z.union(
  [
    text("the held-out check's shell command"),
    strict({
      run: text("the held-out check's shell command"),
      metric: text("the metric it prints").optional(),
    }),
  ],
  { error: required("a shell command, or { run, metric }") },
);

const stage = strict({
  name: text("the stage's name"),
  env: z
    .record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String))
    .default({}),
  budget: duration("the stage's budget").optional(),
  timeout: duration("the stage's timeout").optional(),
  seeds: z.number().int("must be a whole number").min(1, "must be 1 or more").optional(),
});

export const RESEARCHER_KINDS = [
  "mutate",
  "anthropic",
  "openai",
  "openai-compatible",
  "claude-code",
  "codex",
  "command",
] as const;

const count = (what: string) =>
  z
    .number({ error: required(`a whole number (${what})`) })
    .int("must be a whole number")
    .positive("must be positive");

const price = strict({
  input: z.number({ error: required("dollars per million input tokens") }).min(0, "must be ≥ 0"),
  output: z.number({ error: required("dollars per million output tokens") }).min(0, "must be ≥ 0"),
});

const researcher = strict({
  kind: z
    .enum(RESEARCHER_KINDS, { error: required(`one of ${RESEARCHER_KINDS.join(", ")}`) })
    .optional(),
  model: text("a model name").optional(),
  base_url: text("the provider's base URL").optional(),
  max_turns: count("model calls per proposal").default(40),
  max_output_tokens: count("tokens per model answer").default(8192),
  history_tokens: count("tokens of run history given to the researcher").default(24_000),
  timeout: duration("the longest a proposal may take").default(1800),
  retries: z.number().int("must be a whole number").min(0, "must be ≥ 0").default(5),
  prices: z
    .record(z.string(), price, {
      error: required("a mapping of model names to { input, output } prices"),
    })
    .default({}),
  command: text("the command researcher's shell command").optional(),
  args: z.array(z.string(), { error: required("a list of extra arguments") }).default([]),
});

const slurm = strict({
  partition: text("a SLURM partition").optional(),
  account: text("a SLURM account").optional(),
  qos: text("a SLURM quality of service").optional(),
  time: duration("the job time limit; default: the task's timeout").optional(),
  sbatch_args: z.array(z.string(), { error: required("a list of extra sbatch flags") }).default([]),
  poll: duration("how often job states are read").default(2),
  requeues: z.number().int("must be a whole number").min(0, "must be ≥ 0").default(2),
});

const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;
const env = z
  .record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String), {
    error: required("a mapping of variable names to values"),
  })
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

export const taskFileSchema = strict({
  name: text("the task's name").optional(),
  program: text("the file researchers read first").default("program.md"),
  editable: globs("the files a researcher may change").min(1, "must list at least one glob"),
  protected: globs("files hashed before and after every replicate").default([]),
  setup: text("a shell command run once per machine").optional(),
  run: text("the shell command that runs one replicate"),
  budget: duration("exported as AR_TIME_BUDGET").default(300),
  timeout: duration("the hard limit for one replicate").optional(),
  kill_grace: duration("time between SIGTERM and SIGKILL").default(10),
  log_limit: size.default(10_000_000),
  seed: z.number().int("must be an integer").min(0, "must be ≥ 0").default(42),
  metric,
  secondary: z.array(secondary, { error: required("a list of metric names") }).default([]),
  constraints: z.array(constraint, { error: required("a list of bounds") }).default([]),
  resources: resources.default({ gpus: 0 }),
  judge: judge.default({ policy: "greedy", min_effect: 0, confidence: 0.95 }),
  verify: verify.optional(),
  outputs: globs("files a replicate may write besides the editable ones").default([]),
  stages: z
    .array(stage, { error: required("a list of stages") })
    .min(1, "must list at least one stage")
    .superRefine((list, ctx) => {
      const names = list.map((s) => s.name);
      const twice = names.find((n, i) => names.indexOf(n) !== i);
      if (twice) ctx.addIssue({ code: "custom", message: `names the stage "${twice}" twice` });
    })
    .optional(),
  promote_every: z.number().int("must be a whole number").min(1, "must be 1 or more").optional(),
  env: env.default({}),
  slurm: slurm.default({ sbatch_args: [], poll: 2, requeues: 2 }),
  researcher: researcher.default({
    max_turns: 40,
    max_output_tokens: 8192,
    history_tokens: 24_000,
    timeout: 1800,
    retries: 5,
    prices: {},
    args: [],
  }),
});

export type TaskFile = z.output<typeof taskFileSchema>;
