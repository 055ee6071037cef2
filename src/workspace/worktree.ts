import { existsSync, rmSync } from "node:fs";
import { git, gitRaw } from "./git.js";

/** Creates a detached worktree of `commit` at `path`, replacing any leftover from a killed run. */
export async function addWorktree(root: string, path: string, commit: string): Promise<void> {
  if (existsSync(path)) await removeWorktree(root, path);
  await git(root, ["worktree", "add", "--detach", "--force", "--quiet", path, commit]);
}

/** Removes a worktree and its administrative files; never fails on one that is already gone. */
export async function removeWorktree(root: string, path: string): Promise<void> {
  try {
    await git(root, ["worktree", "remove", "--force", "--force", path]);
  } catch {
    rmSync(path, { recursive: true, force: true });
    await git(root, ["worktree", "prune"]);
  }
}

/**
 * Stages everything in the worktree and commits it. Returns the new commit, or null when
 * the worktree holds no change. Hooks and the user's identity play no part.
 */
export async function commitAll(worktree: string, message: string): Promise<string | null> {
  await git(worktree, ["add", "--all", "--force", "."]);
  const { code } = await gitRaw(worktree, ["diff", "--cached", "--quiet"], { okCodes: [1] });
  if (code === 0) return null;
  await git(worktree, ["commit", "--quiet", "--no-verify", "-F", "-"], {
    input: message,
    harness: true,
  });
  return git(worktree, ["rev-parse", "HEAD"]);
}

/** One path changed between two commits, with the git modes that tell links and submodules apart. */
export interface Change {
  path: string;
  status: "added" | "modified" | "deleted" | "type-changed";
  oldMode: string;
  newMode: string;
}

const STATUS: Record<string, Change["status"]> = {
  A: "added",
  M: "modified",
  D: "deleted",
  T: "type-changed",
};

/** Paths that differ between `from` and `to` (renames reported as a delete and an add). */
export async function changesBetween(dir: string, from: string, to: string): Promise<Change[]> {
  const out = (await gitRaw(dir, ["diff", "--raw", "-z", "--no-renames", "--no-abbrev", from, to]))
    .stdout;
  const fields = out.split("\0");
  const changes: Change[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const meta = fields[i]!.replace(/^:/, "").split(" ");
    changes.push({
      path: fields[i + 1]!,
      oldMode: meta[0] ?? "",
      newMode: meta[1] ?? "",
      status: STATUS[meta[4]?.[0] ?? ""] ?? "modified",
    });
  }
  return changes;
}

export async function diffPatch(dir: string, from: string, to: string): Promise<string> {
  return (await gitRaw(dir, ["diff", "--no-color", "--binary", from, to])).stdout;
}

/** Lines added and removed between two commits (binary files count zero). */
export async function lineCounts(
  dir: string,
  from: string,
  to: string,
): Promise<{ added: number; removed: number }> {
  const out = (await gitRaw(dir, ["diff", "--numstat", from, to])).stdout;
  let added = 0;
  let removed = 0;
  for (const line of out.split("\n")) {
    const [a, r] = line.split("\t");
    if (a && a !== "-") added += Number(a);
    if (r && r !== "-") removed += Number(r);
  }
  return { added, removed };
}
