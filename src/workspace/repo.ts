import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { UsageError, WorkspaceError } from "../errors.js";
import { GitError, git, gitRaw } from "./git.js";
import { STATE_DIR } from "./layout.js";

export const branchName = (tag: string) => `autoresearch/${tag}`;
export const branchRef = (tag: string) => `refs/heads/${branchName(tag)}`;
export const trialRef = (tag: string, n: number) => `refs/autoresearch/${tag}/trials/${n}`;

const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A run tag names a branch and refs, so it must be a plain ref component. */
export function checkTag(tag: string): string {
  if (!TAG.test(tag) || tag.includes("..") || tag.endsWith(".lock") || tag.endsWith("."))
    throw new UsageError(
      `--tag: "${tag}" is not a valid run tag; use letters, digits, ".", "_" and "-" (for example nov27)`,
    );
  return tag;
}

/** Ensures `root` is the top of a git repository with at least one commit. */
export async function checkRepository(root: string): Promise<void> {
  let top: string;
  try {
    top = await git(root, ["rev-parse", "--show-toplevel"]);
  } catch {
    throw new WorkspaceError(
      `${root} is not a git repository; the task must be one: git init && git add -A && git commit -m "task"`,
    );
  }
  if (resolve(top) !== resolve(root))
    throw new WorkspaceError(
      `${root} is inside the repository ${top} but is not its top; run autoresearch from ${top}, or make the task a repository of its own`,
    );
  try {
    await git(root, ["rev-parse", "--verify", "HEAD^{commit}"]);
  } catch {
    throw new WorkspaceError(
      `${root} has no commits yet; commit the task first: git add -A && git commit -m "task"`,
    );
  }
}

/**
 * Refuses uncommitted changes that a run would silently leave out, since it starts from
 * HEAD: edits of tracked files, and new files the researcher could edit (`counts`, the
 * editable globs), which the code may need. Other new files (notes, data) are the person's.
 */
export async function checkClean(
  root: string,
  counts: (path: string) => boolean = () => true,
): Promise<void> {
  const status = await git(root, ["status", "--porcelain", "--untracked-files=all"]);
  const lines = status
    .split("\n")
    .filter((l) => l && (!l.startsWith("?? ") || counts(l.slice(3).replace(/^"|"$/g, ""))));
  if (lines.length === 0) return;
  const shown = lines.slice(0, 10).map((l) => `  ${l}`);
  if (lines.length > 10) shown.push(`  ... and ${lines.length - 10} more`);
  throw new WorkspaceError(
    `the working tree of ${root} has uncommitted changes that the run would leave out (it starts from HEAD); commit them, or stash them (git stash --include-untracked):\n${shown.join("\n")}`,
  );
}

/** Adds the state folder to .git/info/exclude so that it never shows as a change. */
export async function excludeStateDir(root: string): Promise<void> {
  const relative = await git(root, ["rev-parse", "--git-path", "info/exclude"]);
  const file = isAbsolute(relative) ? relative : join(root, relative);
  const line = `/${STATE_DIR}/`;
  const current = existsSync(file) ? readFileSync(file, "utf8") : "";
  if (current.split("\n").includes(line)) return;
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${current && !current.endsWith("\n") ? "\n" : ""}${line}\n`);
}

export async function headCommit(root: string): Promise<string> {
  return git(root, ["rev-parse", "--verify", "HEAD^{commit}"]);
}

/** The commit a ref points to, or null if there is no such ref. */
export async function resolveRef(root: string, ref: string): Promise<string | null> {
  const { stdout, code } = await gitRaw(
    root,
    ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`],
    {
      okCodes: [1],
    },
  );
  return code === 0 ? stdout.trim() : null;
}

/**
 * Moves `ref` to `commit`. With `expected`, the move happens only if the ref still points
 * there (compare-and-swap), so a stale writer cannot overwrite a newer incumbent.
 */
export async function setRef(
  root: string,
  ref: string,
  commit: string,
  expected?: string | null,
): Promise<void> {
  const args = ["update-ref", "-m", "autoresearch", ref, commit];
  if (expected !== undefined) args.push(expected ?? "");
  await git(root, args);
}

/** What carrying the checkout's uncommitted edits to another commit through the stash meets. */
export interface StashCarry {
  /** Whether a tracked file has edits: `git stash` takes only those, new files stay as they are. */
  stashes: boolean;
  /** The files where `git stash pop` would stop on a conflict; null when that cannot be told. */
  conflicts: string[] | null;
}

/**
 * What `git stash && git checkout <onto> && git stash pop` would meet, found without
 * touching the checkout, the index or the stash: the pop is a three-way merge of the edits
 * onto `onto`, based on HEAD, which merge-tree reproduces when HEAD is an ancestor of `onto`
 * (its merge base is then HEAD; the git this supports cannot be given another base).
 */
export async function stashCarry(root: string, onto: string): Promise<StashCarry> {
  // A commit of the edits as `git stash` would make it, stored but on no ref.
  const stash = await git(root, ["stash", "create"], { harness: true });
  if (!stash) return { stashes: false, conflicts: [] };
  const behind = await gitRaw(root, ["merge-base", "--is-ancestor", "HEAD", onto], {
    okCodes: [1],
  });
  if (behind.code !== 0) return { stashes: true, conflicts: null };
  const merged = await gitRaw(
    root,
    ["merge-tree", "--write-tree", "--name-only", "--no-messages", onto, stash],
    { okCodes: [1] },
  );
  // The new tree's id, then one line per conflicted file.
  const files = merged.stdout.split("\n").slice(1).filter(Boolean);
  return { stashes: true, conflicts: merged.code === 1 ? [...new Set(files)] : [] };
}

/** Files tracked at HEAD in `dir` (a repository or worktree). */
export async function trackedFiles(dir: string): Promise<string[]> {
  const out = await gitRaw(dir, ["ls-files", "-z"]);
  return out.stdout.split("\0").filter(Boolean);
}

export { GitError };
