import {
  type Dirent,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { isAbsolute, join } from "node:path";
import picomatch from "picomatch";
import { isSecretName } from "../util/secrets.js";
import { git, gitRaw } from "./git.js";
import { TASK_FILE } from "./layout.js";

/** The task's checkout and the globs of its protected files. */
export interface WatchedTask {
  root: string;
  protected: string[];
}

/**
 * Guards around code the harness does not trust: a researcher's proposal step and a
 * replicate. Both run with the trial's worktree as their folder, but nothing stops a
 * program from writing elsewhere; these checks see what it did to the files the harness
 * itself relies on, and to the user's checkout of the task.
 */

/** A proposal may not add a file larger than this: git would keep it forever. */
export const MAX_FILE_BYTES = 10 * 1024 * 1024;

/**
 * The files that steer the harness's own git processes: the repository's config (a
 * `core.fsmonitor` there runs a command on every status) and hooks, as they were when
 * this process first looked, and the worktree's `.git` link (it says which repository
 * git works on). A change is put back from that first copy, so that trials running at
 * once cannot hand a tampered file on to each other. Besides, the size and time of the
 * task file and the protected files of the user's checkout, to see writes that climbed
 * out of the worktree to what judges the trials (the rest of the checkout is the
 * person's own to edit while a run goes on).
 */
export class HarnessFiles {
  private constructor(
    private readonly root: string,
    private readonly saved: Map<string, Buffer | null>,
    private readonly checkout: Map<string, string>,
    private readonly watched: string[],
  ) {}

  static async take(task: WatchedTask, worktree: string | null): Promise<HarnessFiles> {
    const common = await commonDir(task.root);
    let first = firstSeen.get(common);
    if (!first) {
      const files = [join(common, "config"), ...listFiles(join(common, "hooks"))];
      first = new Map(files.map((f) => [f, read(f)]));
      firstSeen.set(common, first);
    }
    const saved = new Map(first);
    if (worktree) saved.set(join(worktree, ".git"), read(join(worktree, ".git")));
    const watched = await judgingFiles(task);
    return new HarnessFiles(task.root, saved, checkoutState(task.root, watched), watched);
  }

  /** What changed since the snapshot, as paths relative to the task; harness files are put back. */
  async changed(): Promise<string[]> {
    const changed: string[] = [];
    for (const [file, content] of this.saved) {
      const now = read(file);
      if (now === null && content === null) continue;
      if (now !== null && content !== null && now.equals(content)) continue;
      changed.push(relative(this.root, file));
      restore(file, content);
    }
    // Hooks that did not exist before.
    const hooks = join(await commonDir(this.root), "hooks");
    for (const file of listFiles(hooks))
      if (!this.saved.has(file)) {
        changed.push(relative(this.root, file));
        restore(file, null);
      }
    const after = checkoutState(this.root, this.watched);
    for (const [path, state] of after) if (this.checkout.get(path) !== state) changed.push(path);
    return changed;
  }
}

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

/** Size and modification time of each of `files` in the user's checkout. */
function checkoutState(root: string, files: string[]): Map<string, string> {
  const state = new Map<string, string>();
  for (const path of files) {
    try {
      const s = statSync(join(root, path));
      state.set(path, `${s.size} ${s.mtimeMs}`);
    } catch {
      state.set(path, "missing");
    }
  }
  return state;
}

const judging = new Map<string, Promise<string[]>>();
const commons = new Map<string, Promise<string>>();
const firstSeen = new Map<string, Map<string, Buffer | null>>();

/** The task file and the checkout's tracked files that are protected, listed once per process. */
function judgingFiles(task: WatchedTask): Promise<string[]> {
  let files = judging.get(task.root);
  if (!files) {
    const match = picomatch([TASK_FILE, ...task.protected], { dot: true });
    files = gitRaw(task.root, ["ls-files", "-z"]).then((r) =>
      r.stdout.split("\0").filter((p) => p && match(p)),
    );
    judging.set(task.root, files);
  }
  return files;
}

function commonDir(root: string): Promise<string> {
  let dir = commons.get(root);
  if (!dir) {
    dir = git(root, ["rev-parse", "--git-common-dir"]).then((d) =>
      isAbsolute(d) ? d : join(root, d),
    );
    commons.set(root, dir);
  }
  return dir;
}

/** A file's content; something else where a file was (a link, a folder) reads as a marker. */
function read(file: string): Buffer | null {
  try {
    if (!lstatSync(file).isFile()) return Buffer.from("\0 not a regular file");
    return readFileSync(file);
  } catch {
    return null;
  }
}

/**
 * Puts a harness file back: whatever is there (a link is removed, never written
 * through) goes, then the saved content is written anew. Best effort: the trial is
 * refused either way.
 */
function restore(file: string, content: Buffer | null): void {
  try {
    rmSync(file, { recursive: true, force: true });
    if (content !== null) writeFileSync(file, content, { flag: "wx" });
  } catch {}
}

function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir).map((name) => join(dir, name));
  } catch {
    return [];
  }
}

function relative(root: string, file: string): string {
  return file.startsWith(`${root}/`) ? file.slice(root.length + 1) : file;
}
