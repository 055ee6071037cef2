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

/** The commit of branch `ref` when the checkout has it checked out, else null. */
export async function checkedOutAt(root: string, ref: string): Promise<string | null> {
  const head = await gitRaw(root, ["symbolic-ref", "--quiet", "HEAD"], { okCodes: [1] });
  return head.code === 0 && head.stdout.trim() === ref ? resolveRef(root, ref) : null;
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

/** Where a checkout on a branch stands against the commits a process moved the branch through. */
export type CheckoutState =
  /** The branch did not move: there is nothing to follow. */
  | { state: "unmoved" }
  /** HEAD is not on the branch (it may come back), or the person is settling a conflict there. */
  | { state: "elsewhere" }
  /** Its index holds the tip's version of every path the keeps changed: it followed. */
  | { state: "current" }
  | ({ state: "behind" } & Behind);

export interface Behind {
  tip: string;
  /** The commit of the line whose version of those paths the index holds; null if none. */
  at: string | null;
  /** Paths with the person's edits that a follow would overwrite: staged, or in the files. */
  inTheWay: string[];
  /** Paths whose files are the tip's already, their index entries behind (a `try`'s keep). */
  indexOnly: string[];
  /** Paths whose index entries are the tip's, their files still as a kill left them. */
  filesOnly: string[];
  /** Whether a path the keeps changed has a file or an index entry written after the process began. */
  touched: boolean;
  /** Whether the index differs from `at` anywhere (`git checkout -m` refuses until unstaged). */
  staged: boolean;
  /** Staged paths whose files differ from their staged versions: an unstaging loses those. */
  stagedApart: string[];
  /** A merge, revert, cherry-pick or rebase of the person's in progress, by git's name. */
  operation: string | null;
}

/**
 * How a checkout compares with branch `ref`, which a process moved from `from` while the
 * checkout was on it (since `since`, ms). `from` must be that process's own record, never
 * guessed from history: a revert the person staged looks the same. A file the keeps changed
 * that was written after `since` says the person has been at work there since.
 */
export async function checkoutState(
  root: string,
  ref: string,
  from: string,
  since: number,
): Promise<CheckoutState> {
  const tip = await resolveRef(root, ref);
  if (!tip || tip === from) return { state: "unmoved" };
  const head = await gitRaw(root, ["symbolic-ref", "--quiet", "HEAD"], { okCodes: [1] });
  if (head.code !== 0 || head.stdout.trim() !== ref) return { state: "elsewhere" };
  if ((await git(root, ["ls-files", "--unmerged"])) !== "") return { state: "elsewhere" };
  // Stat info gone stale (a file touched, not changed) must not count as an edit.
  await gitRaw(root, ["update-index", "-q", "--refresh"], { okCodes: [1] });
  const moved = await changedPaths(root, from, tip);
  const offTip = await stagedAgainst(root, tip);
  if (!moved.some((p) => offTip.has(p))) {
    // The index has the keeps, yet files still hold `from`'s versions, untouched since: what
    // a kill left, unstaged by the person (`git reset`), so the keeps look undone as edits.
    const filesOnly = await filesLeftAt(root, from, moved, since);
    if (filesOnly.length === 0) return { state: "current" };
    const operation = await operationInProgress(root);
    const none = { inTheWay: [], indexOnly: [], staged: false, stagedApart: [] };
    return { state: "behind", tip, at: tip, filesOnly, touched: false, operation, ...none };
  }
  // The newest commit of the line whose version of the moved paths the index holds: `from`
  // after a kill, a later one where the person checked the branch out again meanwhile.
  const line = (await git(root, ["rev-list", "--first-parent", `${from}..${tip}`]))
    .split("\n")
    .filter(Boolean)
    .slice(1);
  let at: string | null = null;
  let offAt = new Set<string>();
  for (const commit of [...line, from]) {
    const off = await stagedAgainst(root, commit);
    if (moved.every((p) => !off.has(p))) {
      [at, offAt] = [commit, off];
      break;
    }
  }
  const behind = at ? await changedPaths(root, at, tip) : moved;
  // The index holds neither the line's version nor the tip's: the person staged an edit.
  const inTheWay = at ? [] : behind.filter((p) => offTip.has(p));
  const indexOnly: string[] = [];
  const dirty = new Set(
    (await git(root, ["diff-files", "--name-only", "-z"])).split("\0").filter(Boolean),
  );
  // An entry written since (staged, or reset to a commit's version: git leaves those unstamped)
  // may be a revert of the person's. Not where the index holds a keep this line made since:
  // that is the branch checked out while the run went on.
  const entries = await entryTimes(root, behind);
  let touched = at === from && [...entries.values()].some((ms) => ms === 0 || ms > since);
  if (at) {
    const tipFiles = await blobs(root, tip, behind);
    const atFiles = await blobs(root, at, behind);
    for (const path of behind) {
      const file = lstatSync(join(root, path), { throwIfNoEntry: false });
      if (file && file.ctimeMs > since && at === from) touched = true;
      // As the index has it (a tracked file untouched, or one the index lacks, absent).
      if (atFiles.has(path) ? !dirty.has(path) : !file) continue;
      const now = file?.isFile() ? await git(root, ["hash-object", "--", path]) : null;
      if (now === (tipFiles.get(path) ?? null) && (now !== null || !file)) indexOnly.push(path);
      else inTheWay.push(path);
    }
  }
  return {
    state: "behind",
    tip,
    at,
    inTheWay,
    indexOnly,
    filesOnly: [],
    touched,
    staged: at === null || offAt.size > 0,
    stagedApart: [...(at ? offAt : await stagedAgainst(root, from))].filter((p) => dirty.has(p)),
    operation: await operationInProgress(root),
  };
}

/** Of `paths`, the files that hold `from`'s version (or lack it, as `from` does), untouched since `since`. */
async function filesLeftAt(
  root: string,
  from: string,
  paths: string[],
  since: number,
): Promise<string[]> {
  const dirty = new Set(
    (await git(root, ["diff-files", "--name-only", "-z"])).split("\0").filter(Boolean),
  );
  const fromFiles = await blobs(root, from, paths);
  const left: string[] = [];
  for (const path of paths.filter((p) => dirty.has(p))) {
    const file = lstatSync(join(root, path), { throwIfNoEntry: false });
    if (!file) {
      if (!fromFiles.has(path)) left.push(path);
      continue;
    }
    if (!file.isFile() || file.ctimeMs > since) continue;
    if ((await git(root, ["hash-object", "--", path])) === fromFiles.get(path)) left.push(path);
  }
  return left;
}

/** When each of `paths`' index entry last took its file's stat (ms; 0 where git left none). */
async function entryTimes(root: string, paths: string[]): Promise<Map<string, number>> {
  const times = new Map<string, number>();
  if (paths.length === 0) return times;
  const out = await git(root, ["--literal-pathspecs", "ls-files", "-z", "--debug", "--", ...paths]);
  // "<path>\0  ctime: <s>:<ns>\n  mtime: …\n … flags: <n>\n<next path>\0…"
  const parts = out.split("\0");
  let path = parts[0]!;
  for (const part of parts.slice(1)) {
    const end = part.indexOf("\n", part.indexOf("flags:")) + 1;
    const [, s, ns] = /ctime: (\d+):(\d+)/.exec(part) ?? [];
    times.set(path, Number(s) * 1000 + Number(ns) / 1e6);
    path = part.slice(end);
  }
  return times;
}

/** Paths whose index entry differs from `commit`'s (or is unmerged). */
async function stagedAgainst(root: string, commit: string): Promise<Set<string>> {
  const out = await git(root, ["diff-index", "--cached", "--name-only", "-z", commit]);
  return new Set(out.split("\0").filter(Boolean));
}

/** The blob of each of `paths` that `commit` has. */
async function blobs(root: string, commit: string, paths: string[]): Promise<Map<string, string>> {
  const listed = await gitRaw(root, [
    "--literal-pathspecs",
    "ls-tree",
    "-r",
    "-z",
    commit,
    "--",
    ...paths,
  ]);
  const found = new Map<string, string>();
  for (const entry of listed.stdout.split("\0").filter(Boolean)) {
    const tab = entry.indexOf("\t"); // "<mode> <type> <object>\t<path>"
    found.set(entry.slice(tab + 1), entry.slice(0, tab).split(" ")[2]!);
  }
  return found;
}

/** The git operation of the person's in progress in the checkout, if any. */
async function operationInProgress(root: string): Promise<string | null> {
  const markers: [string, string][] = [
    ["MERGE_HEAD", "merge"],
    ["REVERT_HEAD", "revert"],
    ["CHERRY_PICK_HEAD", "cherry-pick"],
    ["rebase-merge", "rebase"],
    ["rebase-apply", "rebase"],
  ];
  const where = (await git(root, ["rev-parse", ...markers.flatMap(([m]) => ["--git-path", m])]))
    .split("\n")
    .map((p) => (isAbsolute(p) ? p : join(root, p)));
  return markers.find((_, i) => existsSync(where[i]!))?.[1] ?? null;
}

async function changedPaths(root: string, from: string, to: string): Promise<string[]> {
  return (await git(root, ["diff", "--name-only", "--no-renames", "-z", from, to]))
    .split("\0")
    .filter(Boolean);
}

/**
 * Brings a checkout that is `behind` (with nothing in the way) to the tip: the index entries
 * of files that are the tip's already, then, as a checkout would, the index and the files of
 * the rest. Other staged entries stay as they are. False if git refused (something changed
 * in between): nothing of the person's is overwritten.
 */
export async function catchUp(root: string, behind: Behind): Promise<boolean> {
  if (!behind.at) return false;
  if (behind.filesOnly.length)
    await git(
      root,
      ["--literal-pathspecs", "checkout", "-q", "--pathspec-from-file=-", "--pathspec-file-nul"],
      { input: behind.filesOnly.map((p) => `${p}\0`).join("") },
    );
  if (behind.indexOnly.length)
    await git(
      root,
      ["--literal-pathspecs", "reset", "-q", "--pathspec-from-file=-", "--pathspec-file-nul"],
      { input: behind.indexOnly.map((p) => `${p}\0`).join("") },
    );
  return followBranch(root, behind.at, behind.tip);
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
