import { lstatSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { isSecretName } from "../executors/env.js";
import { git, gitRaw } from "./git.js";

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
 * `core.fsmonitor` there runs a command on every status) and hooks, and the worktree's
 * `.git` link (it says which repository git works on); their content is kept to put them
 * back. Besides, the size and time of every tracked file of the user's checkout (the task
 * file and the program among them), to see writes that climbed out of the worktree.
 * Windows of trials running at once overlap, so a write is reported by each of them.
 */
export class HarnessFiles {
  private constructor(
    private readonly saved: Map<string, Buffer | null>,
    private readonly checkout: Map<string, string>,
    private readonly root: string,
  ) {}

  static async take(root: string, worktree: string | null): Promise<HarnessFiles> {
    const common = await commonDir(root);
    const files = [join(common, "config"), ...listFiles(join(common, "hooks"))];
    if (worktree) files.push(join(worktree, ".git"));
    const saved = new Map(files.map((f) => [f, read(f)]));
    return new HarnessFiles(saved, await checkoutState(root), root);
  }

  /**
   * What changed since the snapshot, as paths relative to the task: harness files are
   * put back as they were; files of the user's checkout are only reported, since the
   * person may have edited them meanwhile.
   */
  async changed(): Promise<string[]> {
    const changed: string[] = [];
    for (const [file, content] of this.saved) {
      const now = read(file);
      if (now === null && content === null) continue;
      if (now !== null && content !== null && now.equals(content)) continue;
      changed.push(relative(this.root, file));
      if (content === null) rmSync(file, { force: true });
      else writeFileSync(file, content);
    }
    // Hooks that did not exist before.
    const hooks = join(await commonDir(this.root), "hooks");
    for (const file of listFiles(hooks))
      if (!this.saved.has(file)) {
        changed.push(relative(this.root, file));
        rmSync(file, { force: true });
      }
    const after = await checkoutState(this.root);
    for (const [path, state] of after) if (this.checkout.get(path) !== state) changed.push(path);
    return changed;
  }
}

/** Size and modification time of every file of a worktree, git's own folder aside. */
export type FileTimes = Map<string, string>;

export function fileTimes(root: string, dir = "", into: FileTimes = new Map()): FileTimes {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (path !== ".git") fileTimes(root, path, into);
    } else if (entry.isFile()) {
      const s = lstatSync(join(root, path));
      into.set(path, `${s.size} ${s.mtimeMs}`);
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
    let size: number;
    try {
      size = lstatSync(file).size;
    } catch {
      continue; // deleted
    }
    if (size > MAX_FILE_BYTES) {
      problems.push(`${path} (${(size / 1024 / 1024).toFixed(1)} MB, over the 10 MB limit)`);
      continue;
    }
    if (secrets.length === 0) continue;
    const content = readFileSync(file);
    for (const [name, value] of secrets)
      if (content.includes(value)) problems.push(`${path} (holds the value of $${name})`);
  }
  return problems.length ? problems.join(", ") : null;
}

/** Size and modification time of each tracked file of the user's checkout. */
async function checkoutState(root: string): Promise<Map<string, string>> {
  const state = new Map<string, string>();
  for (const path of await trackedFiles(root)) {
    try {
      const s = statSync(join(root, path));
      state.set(path, `${s.size} ${s.mtimeMs}`);
    } catch {
      state.set(path, "missing");
    }
  }
  return state;
}

const tracked = new Map<string, Promise<string[]>>();
const commons = new Map<string, Promise<string>>();

/** The checkout's tracked files, listed once per process: a run does not change them. */
function trackedFiles(root: string): Promise<string[]> {
  let files = tracked.get(root);
  if (!files) {
    files = gitRaw(root, ["ls-files", "-z"]).then((r) => r.stdout.split("\0").filter(Boolean));
    tracked.set(root, files);
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

function read(file: string): Buffer | null {
  try {
    return readFileSync(file);
  } catch {
    return null;
  }
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
