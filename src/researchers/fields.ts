import { z } from "zod";
import { bind } from "../executors/sandbox.js";
import { count, required, strict, text } from "../util/fields.js";

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
  /** Where a researcher program in the sandbox keeps its own state; each kind has defaults. */
  binds: z.array(bind, { error: required("a list of paths") }).optional(),
};

/** `--model`, for every kind that talks to a model. */
export const MODEL_FLAG = {
  flags: "--model <name>",
  description: "the model of an LLM or coding-agent researcher",
};
