import picomatch from "picomatch";
import { STATE_DIR, TASK_FILE } from "./layout.js";
import type { Change } from "./worktree.js";

/** What a task says may change: editable and protected globs, and the program researchers read. */
export interface EditRules {
  editable: string[];
  protected: string[];
  program: string;
}

/** The verdict on a proposal's changed paths: allowed, or the reason it is not. */
export type ScopeCheck = { ok: true } | { ok: false; reason: string };

const LINK_MODE = "120000";
const SUBMODULE_MODE = "160000";

/**
 * What a researcher may change: paths matching an editable glob and no protected glob.
 * The task file, the program, git's and the harness's own files are never editable,
 * whatever the globs say.
 */
export class EditScope {
  private readonly editable: (path: string) => boolean;
  private readonly protectedMatch: (path: string) => boolean;
  private readonly fixed: Set<string>;

  constructor(task: EditRules) {
    this.editable = picomatch(task.editable, { dot: true });
    this.protectedMatch = task.protected.length
      ? picomatch(task.protected, { dot: true })
      : () => false;
    this.fixed = new Set([TASK_FILE, task.program]);
  }

  /** Why `path` may not be changed, or null if it may. */
  refusal(path: string): string | null {
    if (path.split("/").some((part) => part === ".git" || part === STATE_DIR))
      return "harness or git files";
    if (path === ".gitmodules") return "git files";
    if (this.fixed.has(path)) return path === TASK_FILE ? "the task file" : "the program";
    if (this.protectedMatch(path)) return "protected";
    if (!this.editable(path)) return "not editable";
    return null;
  }

  isEditable(path: string): boolean {
    return this.refusal(path) === null;
  }

  /**
   * Checks every change of a proposal. Symbolic links, submodules, binary files and
   * deletions are never accepted: a proposal edits code, it does not remove what runs.
   */
  check(changes: Change[]): ScopeCheck {
    if (changes.length === 0) return { ok: false, reason: "the proposal changed nothing" };
    const refused: string[] = [];
    for (const change of changes) {
      const why = this.refusal(change.path);
      if (why) refused.push(`${change.path} (${why})`);
      else if (change.newMode === LINK_MODE) refused.push(`${change.path} (a symbolic link)`);
      else if (change.newMode === SUBMODULE_MODE) refused.push(`${change.path} (a submodule)`);
      else if (change.status === "deleted") refused.push(`${change.path} (deleted)`);
      else if (change.binary) refused.push(`${change.path} (a binary file)`);
    }
    if (refused.length === 0) return { ok: true };
    return { ok: false, reason: `changes not allowed: ${refused.join(", ")}` };
  }
}
