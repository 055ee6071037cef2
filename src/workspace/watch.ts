import { lstatSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import picomatch from "picomatch";
import { WorkspaceError } from "../errors.js";
import { git, gitRaw } from "./git.js";
import { MAX_FILE_BYTES } from "./guard.js";
import { TASK_FILE } from "./layout.js";

/** The task's checkout and the globs of its protected files. */
export interface WatchedTask {
  root: string;
  protected: string[];
}

/**
 * The files that steer the harness's own git processes: the repository's config (a
 * `core.fsmonitor` there runs a command on every status) and hooks, as they were when the
 * run's session began, and each watched worktree's `.git` link (it says which repository
 * git works on). Besides, the task file and the protected files of the user's
 * checkout, to see writes that climbed out of a worktree to what judges the trials (the
 * rest of the checkout is the person's own to edit while a run goes on). Every change is
 * put back from the first copy, so that trials running at once cannot hand a tampered
 * file on to each other, and the user's files are as they were.
 *
 * Trials overlap (proposals ahead, several slots), so a change found when one program ends
 * may be another's. The watch knows which programs ran since the files were last seen
 * intact: a change found while only one did is that one's; one found while several did is
 * all of theirs to clear, each by running again alone (`alone`), with nothing else running.
 * When each has run alone and none changed anything, whose doing it was stays unknown (a
 * program may write only while others run): then none of their trials may be kept.
 */
export class HarnessWatch {
  private readonly root: string;
  /** The repository's own folder, and every watched file as first seen. */
  private readonly first: Promise<{ common: string; saved: Map<string, Buffer | null> }>;
  private readonly active = new Set<Ticket>();
  /** Incidents with suspects still to run alone, and every one of this session. */
  private readonly incidents = new Set<Incident>();
  private readonly everSeen = new Set<Incident>();
  /** Set while a program runs alone: nothing else starts until it ends. */
  private gate: Promise<void> | null = null;
  private idle: (() => void)[] = [];

  /**
   * One per run session: the files are as they were when it began. `unrestored` hears of a
   * change that could not be put back (a file made immutable, a folder made read-only):
   * the change stays, taken as the new state, so that it is blamed once, not on every
   * later program. After `stopped`, a program's run alone clears no one.
   */
  constructor(
    task: WatchedTask,
    private readonly unrestored: (file: string, why: string) => void = () => undefined,
    private readonly stopped: AbortSignal = new AbortController().signal,
  ) {
    this.root = task.root;
    this.first = (async () => {
      const common = await commonDir(task.root);
      const files = [
        join(common, "config"),
        ...listFiles(join(common, "hooks")),
        ...(await judgingFiles(task)).map((path) => join(task.root, path)),
      ];
      return { common, saved: new Map(files.map((f) => [f, read(f)])) };
    })();
    // Read again when first needed; a failure here must not go unhandled meanwhile.
    this.first.catch(() => undefined);
  }

  /**
   * Runs `fn`, a program working in `worktree`, under watch, and says what it may have
   * changed outside it. Waits first while another runs alone.
   */
  async watch<T>(
    worktree: string | null,
    fn: () => Promise<T>,
    trial: number | null = null,
  ): Promise<Watched<T>> {
    while (this.gate) await this.gate;
    return this.run(worktree, fn, trial);
  }

  /**
   * Runs `fn` as `watch` does, once nothing else runs, and lets nothing start until it
   * ends: what changed outside meanwhile is its own doing.
   */
  async alone<T>(
    worktree: string | null,
    fn: () => Promise<T>,
    trial: number | null = null,
  ): Promise<Watched<T>> {
    while (this.gate) await this.gate;
    let open!: () => void;
    this.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    try {
      while (this.active.size > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
      const watched = await this.run(worktree, fn, trial);
      // A run cut short by a stop tells nothing about who made the change.
      if (trial !== null && !this.stopped.aborted) this.settle(trial, watched.changed?.files ?? []);
      return watched;
    } finally {
      this.gate = null;
      open();
    }
  }

  /**
   * `watch`, then, when other programs ran too, `alone` (unless stopped): the files `fn`
   * itself changed outside, certainly; none when a stop left that unknown.
   */
  async own<T>(
    worktree: string | null,
    fn: () => Promise<T>,
    trial: number | null = null,
  ): Promise<{ value: T; changed: string[] }> {
    let watched = await this.watch(worktree, fn, trial);
    if (watched.changed && !watched.changed.certain && !this.stopped.aborted)
      watched = await this.alone(worktree, fn, trial);
    return { value: watched.value, changed: watched.changed?.certain ? watched.changed.files : [] };
  }

  /** `trial` will not run alone after all (stopped): it no longer holds up its incidents. */
  release(trial: number): void {
    this.settle(trial, []);
  }

  /**
   * Waits until every incident `trial` was a suspect of is settled, and says whether one of
   * them ended with its maker unknown (then the trial must not be kept).
   */
  async unknownMaker(trial: number): Promise<boolean> {
    const mine = [...this.everSeen].filter((i) => i.suspects.has(trial));
    await Promise.all(mine.map((i) => i.settled));
    return mine.some((i) => [...i.files].some((file) => !i.explained.has(file)));
  }

  /** One suspect of its incidents ran alone (and changed `files` again) or dropped out. */
  private settle(trial: number, files: string[]): void {
    for (const incident of this.incidents) {
      if (!incident.waiting.delete(trial)) continue;
      for (const file of files) incident.explained.add(file);
      if (incident.waiting.size === 0) {
        this.incidents.delete(incident);
        incident.done();
      }
    }
  }

  /** Counted as running from the moment it is called: `alone` must never miss one. */
  private async run<T>(
    worktree: string | null,
    fn: () => Promise<T>,
    trial: number | null,
  ): Promise<Watched<T>> {
    const ticket: Ticket = {
      trial,
      link: worktree ? join(worktree, ".git") : null,
      linkContent: worktree ? read(join(worktree, ".git")) : null,
      changed: new Set(),
      shared: false,
    };
    this.active.add(ticket);
    try {
      await this.first;
      const value = await fn();
      const changed = await this.check();
      if (changed.length > 0) {
        for (const t of this.active) {
          for (const path of changed) t.changed.add(path);
          if (this.active.size > 1) t.shared = true;
        }
        if (this.active.size > 1) this.open([...this.active], changed);
      }
      const files = [...ticket.changed];
      if (files.length === 0) return { value, changed: null };
      return { value, changed: { files, certain: !ticket.shared } };
    } finally {
      this.active.delete(ticket);
      if (this.active.size === 0) for (const wake of this.idle.splice(0)) wake();
    }
  }

  /** A change found while `suspects` ran: settled once each trial among them ran alone. */
  private open(suspects: Ticket[], files: string[]): void {
    const trials = suspects.flatMap((t) => (t.trial === null ? [] : [t.trial]));
    let done!: () => void;
    const settled = new Promise<void>((resolve) => {
      done = resolve;
    });
    const incident: Incident = {
      suspects: new Set(trials),
      waiting: new Set(trials),
      files: new Set(files),
      explained: new Set(),
      settled,
      done,
    };
    this.everSeen.add(incident);
    if (incident.waiting.size === 0) incident.done();
    else this.incidents.add(incident);
  }

  /** What differs from the first copy, as paths relative to the task, each put back. */
  private async check(): Promise<string[]> {
    const { common, saved } = await this.first;
    const changed: string[] = [];
    const expected = new Map(saved);
    const links = new Map<string, Ticket>();
    for (const t of this.active)
      if (t.link) {
        expected.set(t.link, t.linkContent);
        links.set(t.link, t);
      }
    const putBack = (file: string, content: Buffer | null) => {
      changed.push(relative(this.root, file));
      const why = restore(file, content);
      if (why === null) return;
      const now = read(file);
      const ticket = links.get(file);
      if (ticket) ticket.linkContent = now;
      else saved.set(file, now);
      this.unrestored(relative(this.root, file), why);
    };
    for (const [file, content] of expected) {
      const now = read(file);
      if (now === null && content === null) continue;
      if (now !== null && content !== null && now.equals(content)) continue;
      putBack(file, content);
    }
    // Hooks that did not exist before.
    for (const file of listFiles(join(common, "hooks")))
      if (!expected.has(file)) putBack(file, null);
    return changed;
  }
}

/** A program's result, and what changed outside its worktree while it ran, if anything. */
export interface Watched<T> {
  value: T;
  /**
   * Null when nothing did. `certain` when it ran alone each time a change was found, so
   * the change is its own; else others ran too and it must run again alone to tell.
   */
  changed: { files: string[]; certain: boolean } | null;
}

interface Ticket {
  /** The trial whose program it is; null for one that is not judged (the held-out check). */
  trial: number | null;
  link: string | null;
  linkContent: Buffer | null;
  changed: Set<string>;
  shared: boolean;
}

/**
 * Refuses to go on with a run while the checkout's task file or protected files differ
 * from its last commit: a program of a run stopped by a kill may have written them, and a
 * new session would take that for how they are.
 */
export async function checkJudgedFiles(task: WatchedTask): Promise<void> {
  const files = await judgingFiles(task);
  if (files.length === 0) return;
  const diff = await git(task.root, ["diff", "--name-only", "HEAD", "--", ...files]);
  const changed = diff.split("\n").filter(Boolean);
  if (changed.length === 0) return;
  const named = changed.join(" ");
  throw new WorkspaceError(
    `${changed.join(", ")} differ${changed.length === 1 ? "s" : ""} from the last commit: a program of the run may have written ${changed.length === 1 ? "it" : "them"} while no orchestrator watched (without the sandbox, one can). Look at \`git diff -- ${named}\`; put ${changed.length === 1 ? "it" : "them"} back with \`git checkout -- ${named}\`, or commit the change if it is yours; then resume`,
  );
}

/** A change found while several programs ran: who are suspected, and who still must run alone. */
interface Incident {
  suspects: Set<number>;
  waiting: Set<number>;
  files: Set<string>;
  /** The files one of them changed again, run alone: whose doing those were is known. */
  explained: Set<string>;
  settled: Promise<void>;
  done: () => void;
}

const judging = new Map<string, Promise<string[]>>();
const commons = new Map<string, Promise<string>>();

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

/**
 * A file's content. Something else where a file was (a link, a folder) reads as a marker,
 * and so does a file too large to keep a copy of: its size and time.
 */
function read(file: string): Buffer | null {
  try {
    const stat = lstatSync(file);
    if (!stat.isFile()) return Buffer.from("\0 not a regular file");
    if (stat.size > MAX_FILE_BYTES) return Buffer.from(`\0 ${stat.size} ${stat.mtimeMs}`);
    return readFileSync(file);
  } catch {
    return null;
  }
}

/**
 * Puts a harness file back: whatever is there (a link is removed, never written
 * through) goes, then the saved content is written anew. Returns why it could not, or
 * null; the trial is refused either way.
 */
function restore(file: string, content: Buffer | null): string | null {
  // Only a marker was kept (a large file, or none was a regular file): nothing to put back.
  if (content?.[0] === 0) return "it is too large to keep a copy of, or was not a regular file";
  try {
    rmSync(file, { recursive: true, force: true });
    if (content !== null) writeFileSync(file, content, { flag: "wx" });
    return null;
  } catch (error) {
    return (error as Error).message;
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
