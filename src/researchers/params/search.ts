import { ResearcherError } from "../../errors.js";
import type { EditRules } from "../../workspace/scope.js";
import type { ProposalRequest } from "../researcher.js";
import { editableParams } from "./files.js";
import { type Dimension, describe, dimensions, type ParamRule } from "./space.js";

type Found = { ok: true; dimensions: Dimension[] } | { ok: false; fatal: true; reason: string };

/** What `mutate` and `tune` share: the dimensions of a parent commit, and the run's header. */
export interface ParamSearch {
  dimensions(request: ProposalRequest): Promise<Found>;
  /** Header lines naming each dimension; throws when `researcher.params` names a missing one. */
  describe(root: string, task: EditRules): Promise<string[]>;
}

const HOW =
  "module-level assignments of numbers, booleans, and strings with a `mutate: a|b` comment, in Python, JavaScript/TypeScript, YAML, JSON or TOML files";

export function paramSearch(researcher: string, rules: ParamRule[] | undefined): ParamSearch {
  // The parameters depend only on the parent commit, which changes only on a keep.
  let cached: { commit: string; found: Found } | null = null;
  const find = async (dir: string, task: EditRules): Promise<Found> => {
    const { dimensions: dims, unmatched } = dimensions(await editableParams(dir, task), rules);
    if (unmatched.length)
      return {
        ok: false,
        fatal: true,
        reason: `researcher.params: ${unmatched.map((n) => `"${n}"`).join(", ")} ${unmatched.length > 1 ? "match" : "matches"} no parameter of the editable files (${HOW})`,
      };
    if (!dims.length)
      return {
        ok: false,
        fatal: true,
        reason: `${researcher} found no parameters to change in the editable files (${HOW}); name them in researcher.params, or mark strings with their choices`,
      };
    return { ok: true, dimensions: dims };
  };
  return {
    async dimensions(request) {
      if (cached?.commit !== request.parent.commit)
        cached = {
          commit: request.parent.commit,
          found: await find(request.worktree, request.task),
        };
      return cached.found;
    },
    async describe(root, task) {
      const found = await find(root, task);
      // A name the user gave that matches nothing is a mistake to fix now; a task without
      // parameters may still want its baseline (the run stops at the first proposal).
      if (!found.ok && rules?.length) throw new ResearcherError(found.reason);
      if (!found.ok) return [`warning: ${found.reason}; the run stops after the baseline`];
      const byFile = new Map<string, string[]>();
      for (const d of found.dimensions)
        byFile.set(d.param.file, [...(byFile.get(d.param.file) ?? []), describe(d)]);
      return [...byFile].map(
        ([file, dims]) =>
          `${researcher}: ${dims.length} parameter(s) in ${file}: ${dims.join(" · ")}`,
      );
    },
  };
}
