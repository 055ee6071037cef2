import { z } from "zod";
import { bind } from "../executors/sandbox.js";
import { count, required, strict, text } from "../util/fields.js";

const paramRule = strict({
  name: text("a parameter name or glob"),
  file: text("a glob of the files it is in").optional(),
  range: z
    .tuple([z.number(), z.number()], { error: required("[low, high]") })
    .refine(([lo, hi]) => lo < hi, "low must be below high")
    .optional(),
  log: z.boolean({ error: required("true or false") }).optional(),
  int: z.boolean({ error: required("true or false") }).optional(),
  choices: z
    .array(z.union([z.string(), z.number(), z.boolean()]), { error: required("a list of values") })
    .min(2, "must list at least two values")
    .optional(),
}).refine((p) => !(p.log && p.range && p.range[0] <= 0), {
  message: "a log scale needs a range above 0",
});

/**
 * Fields of the task file's `researcher:` section that several kinds read; each kind's
 * `settings` lists the ones it reads, and the registry merges them into one section.
 */
export const researcherFields = {
  model: text("a model name").optional(),
  base_url: text("the provider's base URL").optional(),
  max_turns: count("model calls per proposal").default(40),
  max_output_tokens: count("tokens per model answer").default(8192),
  retries: z.number().int("must be a whole number").min(0, "must be ≥ 0").default(5),
  prices: z
    .record(
      z.string(),
      strict({
        input: z
          .number({ error: required("dollars per million input tokens") })
          .min(0, "must be ≥ 0"),
        output: z
          .number({ error: required("dollars per million output tokens") })
          .min(0, "must be ≥ 0"),
      }),
      { error: required("a mapping of model names to { input, output } prices") },
    )
    .default({}),
  args: z.array(z.string(), { error: required("a list of extra arguments") }).default([]),
  command: text("the command researcher's shell command").optional(),
  /** The parameters `mutate` and `tune` change, by name or glob, with what the user knows of them. */
  params: z
    .array(z.union([text("a parameter name or glob"), paramRule]), {
      error: required("a list of parameter names, or of { name, range, log, int, choices }"),
    })
    .min(1, "name at least one parameter, or leave params out to search them all")
    .transform((list) => list.map((p) => (typeof p === "string" ? { name: p } : p)))
    .optional(),
  /** Where a researcher program in the sandbox keeps its own state; each kind has defaults. */
  binds: z.array(bind, { error: required("a list of paths") }).optional(),
};

/** `--model`, for every kind that talks to a model. */
export const MODEL_FLAG = {
  flags: "--model <name>",
  description: "the model of an LLM or coding-agent researcher",
};
