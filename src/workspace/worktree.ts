import { existsSync, readFileSync, rmSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { serialQueue } from "../util/serial.js";
import { git, gitRaw } from "./git.js";
import { revertWithoutContext } from "./revert.js";

// git reads every worktree's administrative folder while it adds one, so adding and
// removing worktrees of one repository at the same time fails: they take turns.
const queues = new Map<string, ReturnType<typeof serialQueue>>();
function inTurn<T>(root: string, work: () => Promise<T>): Promise<T> {
  let queue = queues.get(root);
  if (!queue) {
    queue = serialQueue();
    queues.set(root, queue);
  }
  return queue(work);
}

/** Creates a detached worktree of `commit` at `path`, replacing any leftover from a killed run. */
export async function addWorktree(root: string, path: string, commit: string): Promise<void> {
  if (existsSync(path)) await removeWorktree(root, path);
  await inTurn(root, () =>
    git(root, ["worktree", "add", "--detach", "--force", "--quiet", path, commit]),
  );
}

/**
 * Removes a worktree and its administrative folder in .git/worktrees, as
 * `git worktree remove --force` would, without the cost of a git process per trial.
 * Never fails on one that is already gone.
 */
export function removeWorktree(root: string, path: string): Promise<void> {
  return inTurn(root, () => removeNow(root, path));
}

async function removeNow(root: string, path: string): Promise<void> {
  let admin: string | null = null;
  try {
    const link = /^gitdir: (.+)$/m.exec(readFileSync(join(path, ".git"), "utf8"))?.[1];
    if (link) admin = isAbsolute(link) ? link : resolve(path, link);
  } catch {
    // No .git file: the folder is not a worktree (or is half gone); prune settles it.
  }
  rmSync(path, { recursive: true, force: true });
  const common = resolve(root, await gitCommonDir(root));
  if (admin && dirname(admin) === join(common, "worktrees"))
    rmSync(admin, { recursive: true, force: true });
  else await git(root, ["worktree", "prune"]);
}

const commonDirs = new Map<string, string>();

async function gitCommonDir(root: string): Promise<string> {
  let dir = commonDirs.get(root);
  if (!dir) {
    dir = await git(root, ["rev-parse", "--git-common-dir"]);
    commonDirs.set(root, dir);
  }
  return dir;
}

/**
 * Records everything in the worktree as a commit whose parent is `parent`, whether or
 * not anything changed, so that what runs is exactly what is recorded. Ignored files
 * are included: a file the program would read must be in the commit. The worktree's
 * HEAD does not move; hooks and the user's identity play no part.
 */
export async function commitWorktree(
  worktree: string,
  parent: string,
  message: string,
): Promise<string> {
  await git(worktree, ["add", "--all", "--force", "."]);
  const tree = await git(worktree, ["write-tree"]);
  return git(worktree, ["commit-tree", tree, "-p", parent, "-F", "-"], {
    input: message,
    harness: true,
  });
}

/** One path changed between two commits, with the git modes that tell links and submodules apart. */
export interface Change {
  path: string;
  status: "added" | "modified" | "deleted" | "type-changed";
  oldMode: string;
  newMode: string;
  /** git sees no lines in it (numstat shows "-"). */
  binary?: boolean;
}

const STATUS: Record<string, Change["status"]> = {
  A: "added",
  M: "modified",
  D: "deleted",
  T: "type-changed",
};

export interface Diff {
  changes: Change[];
  added: number;
  removed: number;
  /** The whole patch, binary files included, as `git diff --binary` writes it. */
  patch: string;
}

/**
 * What changed between two commits, in one git process: the paths (renames as a delete
 * and an add), lines added and removed, and the patch.
 */
export async function diffCommits(dir: string, from: string, to: string): Promise<Diff> {
  const out = (
    await gitRaw(dir, [
      "diff",
      "--raw",
      "--numstat",
      "--patch",
      "--binary",
      "-z",
      "--no-renames",
      "--no-abbrev",
      from,
      to,
    ])
  ).stdout;
  // The NUL-separated summary ends with an empty field; the patch follows. Paths are never
  // empty, so the first double NUL is that boundary.
  const boundary = out.indexOf("\0\0");
  const fields = boundary < 0 ? [] : out.slice(0, boundary).split("\0");
  const diff: Diff = {
    changes: [],
    added: 0,
    removed: 0,
    patch: boundary < 0 ? "" : out.slice(boundary + 2),
  };
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    if (field.startsWith(":")) {
      const meta = field.slice(1).split(" ");
      diff.changes.push({
        path: fields[++i]!,
        oldMode: meta[0] ?? "",
        newMode: meta[1] ?? "",
        status: STATUS[meta[4]?.[0] ?? ""] ?? "modified",
      });
    } else {
      // numstat: "added<TAB>removed<TAB>path"; binary files show "-". It follows the
      // raw entries, so the change it describes is already listed.
      const [a, r, path] = field.split("\t");
      if (a === "-") {
        const change = diff.changes.find((c) => c.path === path);
        if (change) change.binary = true;
      }
      if (a && a !== "-") diff.added += Number(a);
      if (r && r !== "-") diff.removed += Number(r);
    }
  }
  return diff;
}

/**
 * Applies the change `theirs` made to its parent onto `ours` by a three-way merge (their
 * common ancestor as base), without touching any checkout. Returns the new commit, whose
 * parent is `ours`, or null when the change conflicts with what `ours` added since.
 */
export async function mergeOnto(
  dir: string,
  ours: string,
  theirs: string,
  message: string,
): Promise<string | null> {
  const { stdout, code } = await gitRaw(
    dir,
    ["merge-tree", "--write-tree", "--no-messages", ours, theirs],
    {
      okCodes: [1],
    },
  );
  if (code === 1) return null;
  const tree = stdout.split("\n")[0]!.trim();
  return git(dir, ["commit-tree", tree, "-p", ours, "-F", "-"], { input: message, harness: true });
}

/**
 * Undoes `commit`'s change in a worktree (staged and in the files, not committed).
 * Returns false, leaving the worktree as it was, when later changes conflict with it.
 * Where git's revert conflicts only because a later change edited a neighbouring line,
 * the change is undone without context (revert.ts), so that two constants on adjacent
 * lines can each be left out alone.
 */
export async function revertIn(worktree: string, commit: string): Promise<boolean> {
  // One parent: a merge's change, or the first commit's, is not one change to take out.
  const parents = (await git(worktree, ["rev-list", "--parents", "-n", "1", commit])).split(" ");
  if (parents.length !== 2) return false;
  const { code } = await gitRaw(worktree, ["revert", "--no-commit", "--no-edit", commit], {
    okCodes: [1],
  });
  if (code === 0) return true;
  await gitRaw(worktree, ["revert", "--abort"], { okCodes: [1, 128] });
  await git(worktree, ["reset", "--hard", "--quiet"]);
  return revertWithoutContext(worktree, commit);
}
