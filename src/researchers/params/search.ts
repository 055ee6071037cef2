import { ResearcherError } from "../../errors.js";
import { closest } from "../../util/fields.js";
import type { EditRules } from "../../workspace/scope.js";
import type { ProposalRequest, ProposalResult } from "../researcher.js";
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
  /**
   * `strict` at the start of a run: a rule that names nothing, or names what cannot be
   * searched, is a mistake to fix before any trial. Later, another researcher may have
   * removed or changed a named parameter: what is still there is searched.
   */
  const find = async (dir: string, task: EditRules, strict: boolean): Promise<Found> => {
    const params = await editableParams(dir, task);
    const { dimensions: dims, unmatched, problems } = dimensions(params, rules);
    if (strict && unmatched.length) {
      const names = [...new Set(params.map((p) => p.name))];
      const guesses = unmatched.flatMap((n) => closest(n, names) ?? []);
      return {
        ok: false,
        fatal: true,
        reason: `researcher.params: ${unmatched.map((n) => `"${n}"`).join(", ")} ${unmatched.length > 1 ? "match" : "matches"} no parameter of the editable files${guesses.length ? ` (did you mean ${guesses.map((g) => `"${g}"`).join(", ")}?)` : ""}; found: ${names.slice(0, 30).join(", ") || "none"}${names.length > 30 ? ", …" : ""}`,
      };
    }
    if (strict && problems.length)
      return { ok: false, fatal: true, reason: `researcher.params: ${problems.join("; ")}` };
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
          found: await find(request.worktree, request.task, false),
        };
      return cached.found;
    },
    async describe(root, task) {
      const found = await find(root, task, true);
      // A task without parameters may still want its baseline (the run stops at the first
      // proposal); a rule the user wrote that does not work is a mistake to fix now.
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

/** A proposal whose unexpected error (a file gone, a disk full) fails it, not the run. */
export async function failureAsResult(
  propose: () => Promise<ProposalResult>,
): Promise<ProposalResult> {
  try {
    return await propose();
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}
