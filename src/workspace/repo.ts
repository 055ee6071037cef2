import {
  appendFileSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
} from "node:fs";
import { tmpdir } from "node:os";
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

/**
 * The commit of branch `ref` when the checkout has it checked out with nothing staged (the
 * index as at that commit), else null: a branch the run may move under the checkout.
 */
export async function checkedOutAt(root: string, ref: string): Promise<string | null> {
  const head = await gitRaw(root, ["symbolic-ref", "--quiet", "HEAD"], { okCodes: [1] });
  if (head.code !== 0 || head.stdout.trim() !== ref) return null;
  const commit = await resolveRef(root, ref);
  if (!commit) return null;
  const staged = await gitRaw(root, ["diff-index", "--cached", "--quiet", commit, "--"], {
    okCodes: [1],
  });
  return staged.code === 0 ? commit : null;
}

/**
 * Brings a checkout whose branch moved from `from` to `to` under it along, as `git checkout`
 * would: the index and the files that differ between the two, unless one of those files
 * has edits of the person's (then nothing changes, and false says so).
 */
export async function followBranch(root: string, from: string, to: string): Promise<boolean> {
  const moved = await gitRaw(root, ["read-tree", "-m", "-u", from, to], { okCodes: [128] });
  return moved.code === 0;
}

/**
 * The tip of branch `ref` when a checkout on it was left behind at `from`: the branch moved
 * on, and the index still holds `from`'s version of every path the branch changed since.
 * `from` must come from the process that moved the branch (a session's or a `try`'s own
 * record), never be guessed from history: a revert the person staged looks the same. Null
 * when the checkout is elsewhere, the branch has not moved, a merge, revert, cherry-pick or
 * rebase is in progress (the person's own), or the index is elsewhere on those paths.
 */
export async function behindOn(root: string, ref: string, from: string): Promise<string | null> {
  const head = await gitRaw(root, ["symbolic-ref", "--quiet", "HEAD"], { okCodes: [1] });
  if (head.code !== 0 || head.stdout.trim() !== ref) return null;
  const tip = await resolveRef(root, ref);
  if (!tip || tip === from || (await operationInProgress(root))) return null;
  const moved = await changedPaths(root, from, tip);
  if (moved.length === 0) return null;
  // Paths whose index entry is not `from`'s (or that are unmerged).
  const differ = new Set(
    (await gitRaw(root, ["diff-index", "--cached", "--name-only", "-z", from])).stdout
      .split("\0")
      .filter(Boolean),
  );
  return moved.some((p) => differ.has(p)) ? null : tip;
}

/** Whether git is in the middle of an operation of the person's that the index belongs to. */
async function operationInProgress(root: string): Promise<boolean> {
  const markers = ["MERGE_HEAD", "REVERT_HEAD", "CHERRY_PICK_HEAD", "rebase-merge", "rebase-apply"];
  const where = (await git(root, ["rev-parse", ...markers.flatMap((m) => ["--git-path", m])]))
    .split("\n")
    .map((p) => (isAbsolute(p) ? p : join(root, p)));
  return where.some((p) => existsSync(p));
}

async function changedPaths(root: string, from: string, to: string): Promise<string[]> {
  return (await gitRaw(root, ["diff", "--name-only", "--no-renames", "-z", from, to])).stdout
    .split("\0")
    .filter(Boolean);
}

/**
 * Brings a checkout left behind at `from` (`behindOn`) to its branch's tip `to`: as
 * `followBranch`, or, where its files are the tip's already and only the index is behind
 * (a `try`'s keep is the working copy), those paths of the index alone. Other staged
 * entries stay as they are. False when edits of the person's to files the keeps changed
 * are in the way: then nothing changes.
 */
export async function catchUp(root: string, from: string, to: string): Promise<boolean> {
  // A file touched but not changed since the index was written must not count as an edit.
  await gitRaw(root, ["update-index", "-q", "--refresh"], { okCodes: [1] });
  if (await followBranch(root, from, to)) return true;
  const changed = await changedPaths(root, from, to);
  const tip = new Map(
    (await gitRaw(root, ["ls-tree", "-r", "-z", to, "--", ...changed])).stdout
      .split("\0")
      .filter(Boolean)
      .map((entry) => {
        const tab = entry.indexOf("\t"); // "<mode> <type> <object>\t<path>"
        return [entry.slice(tab + 1), entry.slice(0, tab).split(" ")[2]!];
      }),
  );
  const present = changed.filter((f) => existsSync(join(root, f)));
  // Each changed file as the tip has it: there with the tip's content, or gone with it.
  if (present.some((f) => !tip.has(f)) || present.length !== tip.size) return false;
  const hashes = present.length
    ? (await gitRaw(root, ["hash-object", "--", ...present])).stdout.split("\n")
    : [];
  if (present.some((f, i) => tip.get(f) !== hashes[i])) return false;
  // HEAD is `to`: those paths of the index become its, as `git reset -- <paths>` makes them.
  await git(root, ["reset", "-q", "--pathspec-from-file=-", "--pathspec-file-nul"], {
    input: changed.map((p) => `${p}\0`).join(""),
  });
  return true;
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

/**
 * A file where `git stash pop` would stop, and what the pop leaves there: conflict markers,
 * `onto`'s version of a binary file, the version of the side that kept a file the other
 * deleted, or something else (a file moved aside for a folder, a rename).
 */
export interface StashConflict {
  path: string;
  kind:
    | "markers"
    | "binary"
    | "deleted by onto"
    | "deleted by edits"
    /** `onto` has a folder where the edits changed a file: the pop moves the file aside. */
    | "folder in the way"
    | "other";
  /** The file's name before one side renamed it to `path` (the other deleted it). */
  from?: string;
}

/** What carrying the checkout's uncommitted edits to another commit through the stash meets. */
export interface StashCarry {
  /** Whether there is anything to stash: edits of tracked files, or files in `inTheWay`. */
  stashes: boolean;
  /**
   * Untracked files (ignored ones too) where checking `onto` out writes a file: git refuses
   * to overwrite an untracked file and overwrites an ignored one without a word, so these
   * must be staged (`git add -f`) to go through the stash; other new files stay as they are.
   */
  inTheWay: string[];
  /** Folders of `inTheWay` that are git repositories of their own: no stash carries them. */
  repositories: string[];
  /** The files where `git stash pop` would stop on a conflict; null when that cannot be told. */
  conflicts: StashConflict[] | null;
}

/**
 * What `git add -f -- <inTheWay> && git stash && git checkout <onto> && git stash pop` would
 * meet, found without touching the checkout, the index or the stash: the pop is a three-way
 * merge of the edits onto `onto`, based on HEAD, which merge-tree reproduces when HEAD is an
 * ancestor of `onto` (its merge base is then HEAD; the git this supports cannot be given
 * another base).
 */
export async function stashCarry(root: string, onto: string): Promise<StashCarry> {
  const inTheWay = await untrackedInTheWay(root, onto);
  // Staged, such a folder would become a link to its commit, leaving its files behind.
  const repositories = repositoriesIn(root, inTheWay);
  if (repositories.length) return { stashes: true, inTheWay, repositories, conflicts: null };
  // A commit of the edits as `git stash` would make it, stored but on no ref.
  const stash = await stashCreate(root, inTheWay);
  if (!stash) return { stashes: false, inTheWay, repositories, conflicts: [] };
  const behind = await gitRaw(root, ["merge-base", "--is-ancestor", "HEAD", onto], {
    okCodes: [1],
  });
  if (behind.code !== 0) return { stashes: true, inTheWay, repositories, conflicts: null };
  const merged = await gitRaw(root, ["merge-tree", "--write-tree", "-z", onto, stash], {
    okCodes: [1],
  });
  return {
    stashes: true,
    inTheWay,
    repositories,
    conflicts: merged.code === 1 ? conflictsOf(merged.stdout, stash) : [],
  };
}

/** The untracked files, ignored ones too, at the paths (or parents of paths) `onto` adds. */
async function untrackedInTheWay(root: string, onto: string): Promise<string[]> {
  const added = await gitRaw(root, [
    "diff",
    "--name-only",
    "-z",
    "--no-renames",
    "--diff-filter=A",
    "HEAD",
    onto,
  ]);
  const taken = new Set<string>();
  for (const path of added.stdout.split("\0").filter(Boolean)) {
    // The path itself, or a file where the path needs a folder.
    const parts = path.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const part = parts.slice(0, i).join("/");
      const stat = lstatSync(join(root, part), { throwIfNoEntry: false });
      if (!stat) break;
      // A repository of the user's own: git lists nothing inside it, only the folder.
      const repository = stat.isDirectory() && existsSync(join(root, part, ".git"));
      if (i === parts.length || !stat.isDirectory() || repository) {
        taken.add(part);
        break;
      }
    }
  }
  if (taken.size === 0) return [];
  // Without --exclude options, ls-files lists ignored files as well; --directory names an
  // untracked folder once ("out/"), however many files it holds.
  const others = await gitRaw(root, [
    "--literal-pathspecs",
    "ls-files",
    "-z",
    "--others",
    "--directory",
    "--",
    ...taken,
  ]);
  return others.stdout.split("\0").filter(Boolean);
}

/** Git repositories of their own at or anywhere under the folders among `paths`. */
function repositoriesIn(root: string, paths: string[]): string[] {
  const found: string[] = [];
  const walk = (folder: string) => {
    if (existsSync(join(root, folder, ".git"))) return void found.push(folder);
    const entries = (() => {
      try {
        return readdirSync(join(root, folder), { withFileTypes: true });
      } catch {
        return []; // unreadable: git's own add reports it
      }
    })();
    // A link to a folder is staged as a link: nothing under it is carried or left behind.
    for (const entry of entries) if (entry.isDirectory()) walk(`${folder}${entry.name}/`);
  };
  for (const path of paths) if (path.endsWith("/")) walk(path);
  return found;
}

/** `git stash create` as after `git add -f -- <files>`, staged in a copy of the index. */
async function stashCreate(root: string, files: string[]): Promise<string> {
  if (files.length === 0) return git(root, ["stash", "create"], { harness: true });
  const dir = mkdtempSync(join(tmpdir(), "ar-index-"));
  try {
    const env = { GIT_INDEX_FILE: join(dir, "index") };
    const index = resolve(root, await git(root, ["rev-parse", "--git-path", "index"]));
    if (existsSync(index)) {
      copyFileSync(index, env.GIT_INDEX_FILE);
      // The copy keeps the index's time: git trusts the recorded stat data of a file changed
      // after the index was written (racy git) only if the index is not newer than it.
      const { atime, mtime } = statSync(index);
      utimesSync(env.GIT_INDEX_FILE, atime, mtime);
    }
    // On its input: the paths may be more than a command line holds.
    await git(
      root,
      ["--literal-pathspecs", "add", "-f", "--pathspec-from-file=-", "--pathspec-file-nul"],
      { env, input: files.join("\0") },
    );
    return await git(root, ["stash", "create"], { harness: true, env });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Reads `merge-tree --write-tree -z` with conflicts: after the tree, one
 * "<mode> <oid> <stage>\t<path>" field per stage of each conflicted file (2: `onto`'s
 * version, 3: the edits') up to an empty field, then the messages, each its number of
 * paths, the paths, a conflict type (stable, unlike the text) and the text. A file moved
 * aside for a folder (file/directory) is named by its own path: the name merge-tree gives
 * it ends in a commit's id, which the pop replaces with a label of its own.
 */
function conflictsOf(out: string, stash: string): StashConflict[] {
  const raw = out.split("\0");
  // The suffix is the id of the side the file came from: the stash's or `onto`'s.
  const fields = raw.map((f) => f.replace(/~[0-9a-f]{40}(?:[0-9a-f]{24})?$/, ""));
  const stages = new Map<string, string[]>();
  // The edits' version of a file where `onto` has a folder: moved aside by the pop.
  const edited = new Set<string>();
  let i = 1;
  for (let field = fields[i]; field; field = fields[++i]) {
    const tab = field.indexOf("\t");
    const path = field.slice(tab + 1);
    stages.set(path, [...(stages.get(path) ?? []), field.slice(tab - 1, tab)]);
    if (raw[i]!.endsWith(`~${stash}`)) edited.add(path);
  }
  const messages: { paths: string[]; type: string }[] = [];
  for (i++; fields[i]; i += Number(fields[i]) + 3) {
    const n = Number(fields[i]);
    messages.push({ paths: fields.slice(i + 1, i + 1 + n), type: fields[i + 1 + n] ?? "" });
  }
  return [...stages].map(([path, has]): StashConflict => {
    const about = messages.filter((m) => m.paths.includes(path));
    const type = about.map((m) => m.type);
    const both = has.includes("2") && has.includes("3");
    if (edited.has(path) && type.includes("CONFLICT (file/directory)"))
      return { path, kind: "folder in the way" };
    const deleted = has.includes("2") ? "deleted by edits" : "deleted by onto";
    if (type.includes("CONFLICT (modify/delete)")) return { path, kind: deleted };
    // Renamed on one side, deleted on the other: the message names both paths.
    const renamed = about.find((m) => m.type === "CONFLICT (rename/delete)");
    const from = renamed?.paths.find((p) => p !== path);
    if (from) return { path, kind: deleted, from };
    if (both && type.includes("CONFLICT (binary)")) return { path, kind: "binary" };
    if (both && type.includes("CONFLICT (contents)")) return { path, kind: "markers" };
    return { path, kind: "other" };
  });
}

/** Files tracked at HEAD in `dir` (a repository or worktree). */
export async function trackedFiles(dir: string): Promise<string[]> {
  const out = await gitRaw(dir, ["ls-files", "-z"]);
  return out.stdout.split("\0").filter(Boolean);
}

export { GitError };
