import { z } from "zod";
import { UsageError } from "../errors.js";
import { oneOf, required, section } from "../util/fields.js";
import { confirmJudge } from "./confirm.js";
import { greedyJudge } from "./greedy.js";
import type { Judge, JudgeKind } from "./judge.js";

/** Every judge kind; the first is the default. A new kind is its module and one line here. */
export const JUDGES: readonly JudgeKind[] = [greedyJudge, confirmJudge];

const names = JUDGES.map((j) => j.name) as [string, ...string[]];

export function judgeKind(name: string): JudgeKind {
  const kind = JUDGES.find((j) => j.name === name);
  if (!kind) throw new UsageError(`unknown judge "${name}"; available: ${names.join(", ")}`);
  return kind;
}

/** The judge a run was started with; `settings` is the task's `judge:` section. */
export function createJudge(name: string, settings: Record<string, unknown> = {}): Judge {
  return judgeKind(name).create(settings);
}

/** The task file's `judge:` section; `seeds` defaults to the policy's own. */
export const judgeSettings = section({
  policy: oneOf(names).default(names[0]),
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
  // Kinds' own fields are validated here and read by their kind from `createJudge`'s settings.
  ...(Object.assign({}, ...JUDGES.map((j) => j.settings ?? {})) as object),
}).transform((s) => ({ ...s, seeds: s.seeds ?? judgeKind(s.policy).seeds }));

export type JudgeSettings = z.output<typeof judgeSettings>;
