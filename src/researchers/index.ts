import { UsageError } from "../errors.js";
import { createMutateResearcher } from "./mutate.js";
import type { Researcher } from "./researcher.js";

export const RESEARCHERS = ["mutate"] as const;

/** The researcher named on the command line. */
export function createResearcher(name: string): Researcher {
  if (name === "mutate") return createMutateResearcher();
  throw new UsageError(
    `--researcher: unknown researcher "${name}"; available: ${RESEARCHERS.join(", ")}`,
  );
}
