import { type Dirent, lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { isSecretName } from "../util/secrets.js";

/**
 * Guards around code the harness does not trust: a researcher's proposal step and a
 * replicate. Both run with the trial's worktree as their folder, but nothing stops a
 * program from writing elsewhere; these checks see what it did to the files the harness
 * itself relies on, and to the user's checkout of the task.
 */

/** A proposal may not add a file larger than this: git would keep it forever. */
export const MAX_FILE_BYTES = 10 * 1024 * 1024;

/** Size and modification time of every file of a worktree, git's own folder aside. */
export type FileTimes = Map<string, string>;

export function fileTimes(root: string, dir = "", into: FileTimes = new Map()): FileTimes {
  let entries: Dirent[];
  try {
    entries = readdirSync(join(root, dir), { withFileTypes: true });
  } catch {
    return into; // unreadable: what is in it cannot be committed either
  }
  for (const entry of entries) {
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (path !== ".git") fileTimes(root, path, into);
    } else if (entry.isFile() || entry.isSymbolicLink()) {
      try {
        const s = lstatSync(join(root, path));
        const link = entry.isSymbolicLink() ? ` -> ${readlinkSync(join(root, path))}` : "";
        into.set(path, `${s.size} ${s.mtimeMs}${link}`);
      } catch {}
    }
  }
  return into;
}

/** Files new, changed or deleted since `before` was taken. */
export function changedFiles(worktree: string, before: FileTimes): string[] {
  const now = fileTimes(worktree);
  const changed = [...now].filter(([path, times]) => before.get(path) !== times).map(([p]) => p);
  for (const path of before.keys()) if (!now.has(path)) changed.push(path);
  return changed;
}

/**
 * Files a proposal left in the worktree that must never be committed: one over
 * MAX_FILE_BYTES, or one holding the value of a credential from the environment (an
 * agent has its API key; what it writes must not carry it into the repository).
 * Checked before the commit, so neither reaches git's objects. The files looked at are
 * those new or changed since `before` was taken: comparing file times costs a
 * millisecond where `git status` costs tens. Returns why, or null.
 */
export function refuseBeforeCommit(
  worktree: string,
  before: FileTimes,
  env: NodeJS.ProcessEnv = process.env,
): string | null {
  const secrets = Object.entries(env).filter(
    (e): e is [string, string] => isSecretName(e[0]) && (e[1]?.length ?? 0) >= 8,
  );
  const problems: string[] = [];
  for (const path of changedFiles(worktree, before)) {
    const file = join(worktree, path);
    try {
      const stat = lstatSync(file);
      if (!stat.isFile()) continue; // links are refused by the scope check
      if (stat.size > MAX_FILE_BYTES) {
        problems.push(`${path} (${(stat.size / 1024 / 1024).toFixed(1)} MB, over the 10 MB limit)`);
        continue;
      }
      if (secrets.length === 0) continue;
      const content = readFileSync(file);
      for (const [name, value] of secrets)
        if (content.includes(value)) problems.push(`${path} (holds the value of $${name})`);
    } catch {
      // Deleted, or unreadable: git could not commit it either.
    }
  }
  return problems.length ? problems.join(", ") : null;
}
