import { UsageError } from "../errors.js";
import { createConfirmJudge } from "./confirm.js";
import { createGreedyJudge } from "./greedy.js";
import type { Judge } from "./judge.js";

export const JUDGES = ["greedy", "confirm"] as const;

export function createJudge(name: string): Judge {
  if (name === "greedy") return createGreedyJudge();
  if (name === "confirm") return createConfirmJudge();
  throw new UsageError(`unknown judge "${name}"; available: ${JUDGES.join(", ")}`);
}
