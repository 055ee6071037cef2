import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { UsageError, WorkspaceError } from "../../errors.js";
import { resolveSandbox, type SandboxMode } from "../../executors/sandbox.js";
import { Ledger } from "../../ledger/ledger.js";
import { type RunRow, TRY_RESEARCHER, type TrialRow } from "../../ledger/types.js";
import type { Researcher } from "../../researchers/researcher.js";
import { loadTask } from "../../task/load.js";
import { listSome, shellWord } from "../../util/text.js";
import { git, gitRaw } from "../../workspace/git.js";
import { paths, TASK_FILE } from "../../workspace/layout.js";
import {
  branchName,
  branchRef,
  checkRepository,
  checkTag,
  excludeStateDir,
  headCommit,
  resolveRef,
  type StashCarry,
  type StashConflict,
  setRef,
  stashCarry,
  trackedFiles,
  trialRef,
} from "../../workspace/repo.js";
import { EditScope } from "../../workspace/scope.js";
import { type RunContext, runContext, storedSandbox } from "../context.js";
import type { Emit } from "../events.js";
import { flushingAfter } from "../trial/results.js";
import { clearFollowing, followedBy, markFollowing, mendCheckout, mendNotice } from "./checkout.js";
import { DEFAULT_STOPS, drive, type LoopEnd } from "./loop.js";
import { checkOwner, recover } from "./recover.js";
import { checkTagFree, checkTaskFiles } from "./start.js";

export interface TryOptions {
  root: string;
  title: string;
  hypothesis: string;
  /** The run to add the trial to; default: the checked-out autoresearch/<tag> branch, else a new run. */
  tag?: string;
  /** The tag of a new run when there is none to continue. */
  newTag: string;
  /** Replaces the task file's sandbox mode (--sandbox). */
  sandbox?: SandboxMode;
  /** Start a new ledger where the task's earlier runs' one is missing or empty (--new-ledger). */
  newLedger?: boolean;
  signal: AbortSignal;
  emit: Emit;
}

export interface TryResult {
  run: RunRow;
  baseline: TrialRow | null;
  trial: TrialRow | null;
  /** Why the trial did not run (the baseline failed, the run was stopped). */
  stopped: string | null;
  incumbent: TrialRow | null;
  /** The trial's first replicate log, when it ran and left one. */
  logFile: string | null;
  /** The ref holding the tried change, when it was committed. */
  trialRef: string | null;
  /** New files the trial left out and left where they were: not editable. */
  leftAlone: string[];
  /** Tried files edited again while the trial ran: not reverted, left as they are. */
  editedMeanwhile: string[];
}

/**
 * What `try` would lose or misjudge: staged versions (it reads the working copy, and a
 * revert resets the index), and an uncommitted task file (the trial would be judged by
 * rules the run does not record).
 */
async function refuseUnsafe(root: string): Promise<void> {
  // A conflict left by a merge (a pop, a `checkout -m`): its markers would be tried as code.
  const unmerged = (await gitRaw(root, ["diff", "--name-only", "--diff-filter=U", "-z"])).stdout
    .split("\0")
    .filter(Boolean);
  if (unmerged.length)
    throw new UsageError(
      `${listSome(unmerged)} still ${unmerged.length === 1 ? "has a conflict" : "have conflicts"} to settle: resolve the conflict markers, then \`git reset -q\` (your edits stay) and try again`,
    );
  const staged = (await gitRaw(root, ["diff", "--cached", "--name-only", "-z"])).stdout;
  if (staged.replaceAll("\0", ""))
    throw new UsageError(
      `changes are staged (${listSome(staged.split("\0").filter(Boolean))}); try reads the working copy and a revert would lose the staged versions: unstage them with \`git reset\` (your edits stay), then try again`,
    );
  const taskFile = (await gitRaw(root, ["diff", "--name-only", "HEAD", "--", TASK_FILE])).stdout;
  if (taskFile.trim())
    throw new UsageError(
      `${TASK_FILE} has uncommitted changes: commit them first (a try is judged by the committed task file)`,
    );
}

/**
 * A checkout on a run's branch that a killed `try` or run left behind its keeps is brought
 * along first, as `resume` would; with edits in the way, the try is refused with the way
 * to put them on top (never "unstage", which would make the next trial undo the keeps).
 */
async function mendLeftBehind(root: string, tag: string, emit: Emit): Promise<void> {
  const name = branchName(tag);
  // Behind a live run's keeps is where the checkout is until that run ends: not to touch.
  const driver = followedBy(root, tag);
  if (driver !== null)
    throw new WorkspaceError(
      `run "${tag}" is being driven by process ${driver}, which moves ${name} under this checkout and brings it along when it ends; stop it (Ctrl-C or kill ${driver}) before trying`,
    );
  const mended = await mendCheckout(root, tag);
  if (mended?.state === "followed") emit({ type: "notice", text: mendNotice(name, mended) });
  if (mended?.state === "left") throw new UsageError(`${mendNotice(name, mended)}; then try again`);
}

/** The working copy's changes against HEAD: those a trial takes, and new files it leaves alone. */
interface WorkingChanges {
  tried: string[];
  leftAlone: string[];
}

/**
 * Modified, deleted and new (not ignored) paths. A new file that is not editable is the
 * user's own (notes, data): taken into the trial it would void it, and the revert would
 * delete it, so it stays out and untouched.
 */
async function workingChanges(root: string, scope: EditScope): Promise<WorkingChanges> {
  const out = (
    await gitRaw(root, ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"])
  ).stdout;
  const changes: WorkingChanges = { tried: [], leftAlone: [] };
  for (const entry of out.split("\0").filter(Boolean)) {
    const path = entry.slice(3);
    const isNew = entry.startsWith("??") || entry.startsWith("A");
    if (isNew && !scope.isEditable(path)) changes.leftAlone.push(path);
    else changes.tried.push(path);
  }
  return changes;
}

function nothingToTry(leftAlone: string[]): UsageError {
  const besides = leftAlone.length
    ? ` besides new files that are not editable, never part of a trial (${listSome(leftAlone)})`
    : "";
  return new UsageError(
    `nothing to try: the working copy has no changes against HEAD${besides}; edit the editable files first`,
  );
}

/** Copies the working copy's version of each path into a worktree (or deletes it there). */
function copyInto(root: string, worktree: string, files: string[]): void {
  for (const file of files) {
    const from = join(root, file);
    const to = join(worktree, file);
    rmSync(to, { force: true });
    // Gone, or a file become a folder (its files come on their own): deleted, in the trial.
    const stat = lstatSync(from, { throwIfNoEntry: false });
    if (!stat || stat.isDirectory()) continue;
    mkdirSync(dirname(to), { recursive: true });
    if (isLink(from)) symlinkSync(readlinkSync(from), to);
    else copyFileSync(from, to);
  }
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * `autoresearch try`: for an agent (or a person) that edits files itself. The working
 * copy's changes against the incumbent become one trial — committed, run, judged,
 * recorded — and afterwards the working copy is on the incumbent either way: a kept
 * change is now the branch tip, a discarded one is reverted (its commit stays under the
 * trial's ref). New files that are not editable are left out and left where they are.
 * The first try of a run also runs the baseline.
 */
export async function tryWorkingCopy(o: TryOptions): Promise<TryResult> {
  const task = loadTask(o.root);
  await checkRepository(task.root);
  await excludeStateDir(task.root);
  // The run whose branch the checkout is on, if any.
  const onBranch = await gitRaw(task.root, ["symbolic-ref", "--quiet", "--short", "HEAD"], {
    okCodes: [1],
  });
  const tag = onBranch.stdout.trim().match(/^autoresearch\/(.+)$/)?.[1];
  // Before the staged check: a try killed after its keep leaves the keep looking staged-undone.
  if (tag) await mendLeftBehind(task.root, tag, o.emit);
  await refuseUnsafe(task.root);
  const scope = new EditScope(task);
  const before = await workingChanges(task.root, scope);
  // On a run's branch, the run's recovery may have more to say (commits of the person's).
  if (before.tried.length === 0 && !(tag && existsSync(paths.run(task.root, tag))))
    throw nothingToTry(before.leftAlone);
  // Refused before anything is recorded when --sandbox asks for what cannot work here.
  const given = resolveSandbox(task.sandbox, o.sandbox, paths.state(task.root));
  const ledger = Ledger.open(task.root, { verify: true, newLedger: o.newLedger });
  try {
    const run = await chooseRun(task.root, ledger, o);
    // Recovery may have brought the checkout along to a keep that holds some of the edits.
    const { tried, leftAlone } = await workingChanges(task.root, scope);
    if (tried.length === 0) throw nothingToTry(leftAlone);
    // A run goes on with the --sandbox it was started with, unless another is given.
    const mode = o.sandbox ?? storedSandbox(run);
    const sandbox =
      mode === o.sandbox
        ? given
        : resolveSandbox(task.sandbox, mode, paths.state(task.root), "the run's --sandbox");
    if (o.sandbox && run.sandbox !== o.sandbox) ledger.setSandbox(run.id, o.sandbox);
    o.emit({
      type: "run-start",
      tag: run.tag,
      task: task.name,
      metric: run.metric,
      resumed: ledger.nextTrialNumber(run.id) > 0,
      researcher: TRY_RESEARCHER,
      sandbox: sandbox.summary,
    });
    const researcher: Researcher = {
      name: TRY_RESEARCHER,
      async propose(request) {
        copyInto(task.root, request.worktree, tried);
        return { ok: true, title: o.title, hypothesis: o.hypothesis };
      },
    };
    const ctx = runContext(
      task,
      ledger,
      run,
      { signal: o.signal, emit: o.emit, sandbox: mode },
      [researcher],
      {
        kind: "local",
      },
    );
    // chooseRun put HEAD on the branch at the incumbent; a keep moves the branch under it.
    markFollowing(task.root, run.tag, await headCommit(task.root));
    const { baseline, trial, end } = await flushingAfter(ctx.results, driveOnce(ctx));
    // The loop's own reason names --max-trials, a flag try does not have.
    if (trial && end.status === "finished")
      ledger.setRunStatus(run.id, end.status, "ran the trial `autoresearch try` asked for");
    const saved = trial !== null && committed(trial);
    const editedMeanwhile =
      trial && trial.verdict !== "interrupted" && saved
        ? await syncWorkingCopy(task.root, tried, trial.verdict === "keep", trial.commit!)
        : [];
    clearFollowing(task.root, run.tag);
    return {
      run: ledger.runById(run.id)!,
      baseline,
      trial,
      stopped: trial ? null : end.reason,
      incumbent: ledger.incumbent(run.id),
      logFile: trial ? firstLog(ledger, trial) : null,
      trialRef: trial && saved ? trialRef(run.tag, trial.n) : null,
      leftAlone,
      editedMeanwhile,
    };
  } finally {
    ledger.close();
  }
}

/** Runs the baseline when the run has none, then the one trial; reports what each gave. */
async function driveOnce(
  ctx: RunContext,
): Promise<{ baseline: TrialRow | null; trial: TrialRow | null; end: LoopEnd }> {
  const { ledger, run } = ctx;
  const before = ledger.countTrials(run.id);
  // By number, not by count: an interrupted trial may not count toward the limit.
  const first = ledger.nextTrialNumber(run.id);
  const needsBaseline = ledger.incumbent(run.id) === null;
  const end = await drive(ctx, {
    maxTrials: before + (needsBaseline ? 2 : 1),
    deadline: null,
    maxUsd: null,
    stops: { ...DEFAULT_STOPS, maxFailures: 0 },
    since: Date.now(),
    // A baseline that fails leaves the change untried, and the working copy as it is.
    baselineAlone: true,
  });
  const trials = ledger.trials(run.id).filter((t) => t.n >= first);
  return {
    baseline: trials.find((t) => t.baseline) ?? null,
    trial: trials.find((t) => !t.baseline) ?? null,
    end,
  };
}

/**
 * Whether the trial's ref holds the change. One refused before its commit (a file too
 * large, a credential) exists nowhere but in the working copy, which must then stay.
 */
function committed(trial: TrialRow): boolean {
  return trial.commit !== null && trial.commit !== trial.parentCommit;
}

/** Of `files`, those whose working copy is not what `commit` holds (new files included). */
async function differing(root: string, commit: string, files: string[]): Promise<string[]> {
  const inCommit = new Map<string, string>();
  const listed = (await gitRaw(root, ["ls-tree", "-r", "-z", commit, "--", ...files])).stdout;
  for (const entry of listed.split("\0").filter(Boolean)) {
    const [meta, path] = entry.split("\t");
    inCommit.set(path!, meta!.split(" ")[2]!);
  }
  // A folder where a file was is no file of the working copy's: the file is gone.
  const present = files.filter((f) =>
    lstatSync(join(root, f), { throwIfNoEntry: false })?.isFile(),
  );
  const hashes = present.length
    ? (await git(root, ["hash-object", "--", ...present])).split("\n")
    : [];
  const now = new Map(present.map((f, i) => [f, hashes[i]]));
  return files.filter((f) => now.get(f) !== inCommit.get(f) && !isLink(join(root, f)));
}

/** A trial refused before it ran has no log: none is named rather than a missing path. */
function firstLog(ledger: Ledger, trial: TrialRow): string | null {
  return (
    ledger
      .replicates(trial.id)
      .map((r) => r.logPath)
      .find((path) => existsSync(path)) ?? null
  );
}

/**
 * The way onto the incumbent, with the edits: through the stash, whose pop stops on a
 * conflict where the incumbent changed lines next to them and keeps them in the stash.
 */
function offIncumbent(
  root: string,
  run: RunRow,
  head: string,
  incumbent: string,
  carry: StashCarry,
): UsageError {
  const where = `the checkout is at ${head.slice(0, 7)} but the incumbent of run "${run.tag}" is ${incumbent.slice(0, 7)}`;
  // With nothing to stash, a pop would take out an older stash, not these edits.
  if (!carry.stashes)
    return new UsageError(
      `${where}; run \`git checkout ${run.branch}\` (your new files come along) and try again`,
    );
  if (carry.repositories.length) {
    const one = carry.repositories.length === 1;
    const asides = new Set<string>();
    let movable = true;
    const moves = carry.repositories.map((folder) => {
      const path = folder.replace(/\/$/, "");
      const name = path.split("/").at(-1)!;
      // Two of one name are moved to two places, not the second into the first.
      let aside = `../${name}.aside`;
      for (let n = 2; asides.has(aside); n++) aside = `../${name}.aside${n}`;
      asides.add(aside);
      // A linked worktree's repository keeps its path: moved by hand, it is told the new one.
      // Another .git file (a submodule's) points to its repository by a relative path,
      // which a move breaks: then its own tool moves it, not this advice.
      const dotGit = join(root, path, ".git");
      const pointer = lstatSync(dotGit).isFile() ? readFileSync(dotGit, "utf8").trim() : null;
      const repair = pointer ? ` && git -C ${shellWord(aside)} worktree repair` : "";
      if (pointer && !/^gitdir: \/.*\/worktrees\/[^/]+$/.test(pointer)) movable = false;
      return `mv -- ${shellWord(path)} ${shellWord(aside)}${repair}`;
    });
    const how = movable
      ? ` (for example \`${moves.join(" && ")}\`)`
      : " (one's .git file points to its repository by a path relative to it, which a plain move breaks: move that one with the tool that made it)";
    return new UsageError(
      `${where}, which has files where ${listSome(carry.repositories)} ${one ? "is a git repository" : "are git repositories"} of your own: no stash carries ${one ? "it" : "them"}, and a checkout would refuse; move ${one ? "it" : "them"} out of this checkout first${how}, then try again`,
    );
  }
  const inTheWay = carry.inTheWay;
  const add = inTheWay.length ? `git add -f -- ${inTheWay.map(shellPath).join(" ")} && ` : "";
  const move = `${add}git stash && git checkout ${run.branch} && git stash pop`;
  const along = inTheWay.length
    ? `your edits come along, onto the incumbent, and so do your new files it has too (${listSome(inTheWay)}): staged, they go through the stash, as a checkout would refuse or overwrite them`
    : "your edits come along, onto the incumbent";
  const resolve = "then `git reset && git stash drop`, and try again";
  if (carry.conflicts === null)
    return new UsageError(
      `${where}; run \`${move}\` (${along}) and try again; should the pop stop on a conflict, your edits stay in the stash: settle each file \`git status\` lists as unmerged (resolve its conflict markers or, where one side deleted it, keep it with \`git add\` or drop it with \`git rm\`), ${resolve}`,
    );
  if (carry.conflicts.length === 0)
    return new UsageError(`${where}; run \`${move}\` (${along}) and try again`);
  // The pop would stop before it applies anything, and a drop then would lose the edits.
  const taken = carry.conflicts
    .filter((c) => c.kind === "folder in the way")
    .map((c) => `${c.path}~Stashed changes`)
    .filter((aside) => lstatSync(join(root, aside), { throwIfNoEntry: false }));
  if (taken.length)
    return new UsageError(
      `${where}, which has a folder where you edited a file; the pop would put your version at ${listSome(taken)}, where a file is already: move ${taken.length === 1 ? "it" : "them"} out of the way first (for example \`mv -- ${shellWord(taken[0]!)} ${shellWord(`${taken[0]!}.old`)}\`), then try again`,
    );
  const files = listSome(carry.conflicts.map((c) => c.from ?? c.path));
  return new UsageError(
    `${where}, whose changes conflict with your edits in ${files}: run \`${move}\`; the pop will stop on the conflict, keeping your edits in the stash: ${settle(carry.conflicts)}, ${resolve}`,
  );
}

/** How to settle each kind of conflict the pop stops on; only a content conflict has markers. */
function settle(conflicts: StashConflict[]): string {
  const steps: string[] = [];
  let it = "it";
  const step = (kind: StashConflict["kind"], say: (list: string, args: string) => string) => {
    const files = conflicts.filter((c) => c.kind === kind);
    it = files.length > 1 ? "them" : "it";
    // A file one side renamed is named as it was, then as the pop leaves it.
    const names = files.map((c) => (c.from ? `${c.from} (now ${c.path})` : c.path));
    if (files.length)
      steps.push(say(listSome(names), files.map((c) => shellPath(c.path)).join(" ")));
  };
  const keepOrDrop = (args: string) =>
    `keep ${it} with \`git add -- ${args}\` or drop ${it} with \`git rm -q -- ${args}\``;
  step("markers", (list) => `resolve the conflict markers in ${list}`);
  step(
    "deleted by onto",
    (list, args) =>
      `the incumbent deleted ${list}, which you edited, and the pop leaves your version: ${keepOrDrop(args)}`,
  );
  const renamed = conflicts.some((c) => c.kind === "deleted by edits" && c.from);
  step(
    "deleted by edits",
    (list, args) =>
      `you deleted ${list}, which the incumbent ${renamed ? "renamed" : "changed"}, and the pop leaves its version: ${keepOrDrop(args)} (a trial cannot delete a file: dropped, it is invalid)`,
  );
  step(
    "binary",
    (list, args) =>
      `the pop leaves the incumbent's version of ${list}, which git cannot merge, and a trial cannot change a binary file: keep the incumbent's (\`git checkout --theirs -- ${args}\` puts yours back, outside any trial)`,
  );
  step("folder in the way", (list) => {
    const aside = (path: string) => shellPath(`${path}~Stashed changes`);
    const names = conflicts.filter((c) => c.kind === "folder in the way").map((c) => c.path);
    return `the incumbent has a folder where you edited the file ${list}, and the pop leaves your version beside it as ${names.map(aside).join(", ")}: carry your edits into the folder's files by hand, then \`git rm -q -- ${names.map(aside).join(" ")}\``;
  });
  step(
    "other",
    (list) =>
      `settle ${list} as \`git status\` describes (the pop writes no conflict markers there)`,
  );
  return steps.join("; ");
}

/** A path as one shell word that git reads literally (no glob, no pathspec magic). */
function shellPath(path: string): string {
  return shellWord(/[*?[\\]|^:/.test(path) ? `:(literal)${path}` : path);
}

/**
 * The run whose line holds a detached HEAD past its base (a trial's commit checked out to
 * look back): `try` there goes on with that run, not a new one from an old commit.
 */
async function lineHolding(root: string, ledger: Ledger): Promise<string | null> {
  const head = await headCommit(root);
  for (const run of ledger.runs().reverse()) {
    if (run.baseCommit === head) continue;
    const on = (a: string, b: string) =>
      gitRaw(root, ["merge-base", "--is-ancestor", a, b], { okCodes: [1] }).then(
        (r) => r.code === 0,
        () => false, // the run's branch is gone
      );
    if ((await on(head, branchRef(run.tag))) && (await on(run.baseCommit, head))) return run.tag;
  }
  return null;
}

/** The latest run whose branch holds `head`, else the latest whose branch is there. */
async function runToAddTo(root: string, ledger: Ledger, head: string): Promise<RunRow | null> {
  let found: RunRow | null = null;
  for (const run of ledger.runs().reverse()) {
    if (!(await resolveRef(root, branchRef(run.tag)))) continue;
    const on = await gitRaw(root, ["merge-base", "--is-ancestor", head, branchRef(run.tag)], {
      okCodes: [1],
    });
    if (on.code === 0) return run;
    found ??= run;
  }
  return found;
}

/** The run a try belongs to; a new one starts from HEAD and checks its branch out. */
async function chooseRun(root: string, ledger: Ledger, o: TryOptions): Promise<RunRow> {
  const checkedOut = await git(root, ["symbolic-ref", "--quiet", "--short", "HEAD"]).catch(
    () => "",
  );
  const tag =
    o.tag ??
    (checkedOut.startsWith("autoresearch/") ? checkedOut.slice("autoresearch/".length) : null) ??
    (checkedOut ? null : await lineHolding(root, ledger));
  const existing = tag ? ledger.run(tag) : null;
  if (existing) {
    checkOwner(existing, "trying");
    // A recorded sandbox this version does not know is refused before anything is recovered.
    if (!o.sandbox) storedSandbox(existing);
    ledger.sessionBegins(existing.id, process.pid);
    const { checkout } = await recover(loadTask(root), ledger, existing);
    if (checkout?.state === "left")
      throw new UsageError(`${mendNotice(existing.branch, checkout)}; then try again`);
    if (checkout) o.emit({ type: "notice", text: mendNotice(existing.branch, checkout) });
    const incumbent = ledger.incumbent(existing.id)?.commit ?? existing.baseCommit;
    const head = await headCommit(root);
    if (head !== incumbent)
      throw offIncumbent(root, existing, head, incumbent, await stashCarry(root, incumbent));
    if (checkedOut !== existing.branch)
      await git(root, ["symbolic-ref", "HEAD", branchRef(existing.tag)]);
    return ledger.runById(existing.id)!;
  }
  const newTag = checkTag(tag ?? o.newTag);
  if (ledger.run(newTag))
    throw new UsageError(
      tag
        ? `--tag: run "${newTag}" exists; check out ${branchName(newTag)} to go on with it, or pass another --tag`
        : `a run "${newTag}" (today's tag) exists already; check out ${branchName(newTag)} to go on with it, or pass --tag NAME to start another`,
    );
  if (await resolveRef(root, branchRef(newTag)))
    throw new UsageError(
      `--tag: branch ${branchName(newTag)} already exists; pass another --tag, or delete the branch`,
    );
  await checkTagFree(root, newTag);
  const task = loadTask(root);
  checkTaskFiles(task, await trackedFiles(root));
  const base = await headCommit(root);
  await setRef(root, branchRef(newTag), base, null);
  // HEAD and the branch are the same commit, so switching leaves the edits where they are.
  await git(root, ["symbolic-ref", "HEAD", branchRef(newTag)]);
  // Unasked for (no --tag): meant, or a checkout that left a run's branch by mistake.
  const latest = tag ? null : await runToAddTo(root, ledger, base);
  if (latest)
    o.emit({
      type: "notice",
      text: `a new run "${newTag}" starts from ${checkedOut || "a detached HEAD"} at ${base.slice(0, 7)}, since the checkout is on no run's branch; to add trials to run "${latest.tag}" instead, check out ${latest.branch} before trying`,
    });
  return ledger.createRun({
    tag: newTag,
    taskName: task.name,
    taskJson: JSON.stringify(task),
    metric: task.metric.name,
    goal: task.metric.goal,
    baseCommit: base,
    branch: branchName(newTag),
    researcher: TRY_RESEARCHER,
    judge: task.judge.policy,
    seed: task.seed,
    maxTrials: null,
    sandbox: o.sandbox ?? null,
  });
}

/**
 * Puts the working copy on the incumbent. After a keep the branch (checked out) moved to
 * a commit holding exactly the working copy's files, so only the index is refreshed;
 * otherwise the tried paths are restored from HEAD and new ones removed.
 */
async function syncWorkingCopy(
  root: string,
  changed: string[],
  kept: boolean,
  tried: string,
): Promise<string[]> {
  if (kept) {
    await git(root, ["reset", "--quiet"]);
    return [];
  }
  // A file edited again while the trial ran holds work the trial's ref does not: keep it.
  const edited = new Set(await differing(root, tried, changed));
  const revert = changed.filter((f) => !edited.has(f));
  const tracked = new Set(
    (await gitRaw(root, ["ls-tree", "-r", "-z", "--name-only", "HEAD"])).stdout.split("\0"),
  );
  const restore = revert.filter((f) => tracked.has(f));
  for (const file of revert.filter((f) => !tracked.has(f)))
    rmSync(join(root, file), { force: true });
  if (restore.length) await git(root, ["checkout", "HEAD", "--", ...restore]);
  return [...edited];
}
