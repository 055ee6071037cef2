import { UsageError } from "../errors.js";
import { createGreedyJudge } from "./greedy.js";
import type { Judge } from "./judge.js";

export const JUDGES = ["greedy"] as const;

export function createJudge(name: string): Judge {
  if (name === "greedy") return createGreedyJudge();
  throw new UsageError(`unknown judge "${name}"; available: ${JUDGES.join(", ")}`);
}
