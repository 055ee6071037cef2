/**
 * The task's own checkout, when it is on a run's branch: a session or a `try` moves the
 * branch under it and brings it along afterwards. Killed in between, it leaves the checkout
 * behind the keeps (`git status` shows them undone, and a commit would revert them). What
 * each such process records before it starts is what tells that state from a revert the
 * person staged, which looks the same and must never be touched.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { writeJson } from "../../util/fs.js";
import { isAlive, processStartTime } from "../../util/proc.js";
import { listSome, shellWord } from "../../util/text.js";
import { paths } from "../../workspace/layout.js";
import {
  type Behind,
  branchRef,
  catchUp,
  checkedOutAt,
  checkoutState,
} from "../../workspace/repo.js";

/** What a process records before it moves the branch the checkout is on. */
interface Following {
  /** The branch's commit then, whose files the checkout holds. */
  from: string;
  /** When (ms): a file or index entry the keeps changed written later is the person's work. */
  at: number;
  pid: number;
  start: string | null;
}

/**
 * Said before a process moves run `tag`'s branch, now at `from`: where the checkout may be
 * left. A record a stop left stays as it is, but for who holds it now, since the checkout
 * is still where that record says.
 */
export function markFollowing(root: string, tag: string, from: string): void {
  const left = readFollowing(root, tag);
  const record: Following = {
    from: left?.from ?? from,
    at: left?.at ?? Date.now(),
    pid: process.pid,
    start: processStartTime(process.pid),
  };
  writeJson(paths.following(root, tag), record);
}

export function clearFollowing(root: string, tag: string): void {
  rmSync(paths.following(root, tag), { force: true });
}

/** The record, or null when there is none or it cannot be read (then it is dropped). */
function readFollowing(root: string, tag: string): Following | null {
  const file = paths.following(root, tag);
  if (!existsSync(file)) return null;
  try {
    const record = JSON.parse(readFileSync(file, "utf8")) as Following;
    if (/^[0-9a-f]{40,64}$/.test(record.from) && Number.isFinite(record.at)) return record;
  } catch {}
  clearFollowing(root, tag);
  return null;
}

/** The process that moves run `tag`'s branch under the checkout now, if one does. */
export function followedBy(root: string, tag: string): number | null {
  const record = readFollowing(root, tag);
  return record && record.pid !== process.pid && isAlive(record.pid, record.start)
    ? record.pid
    : null;
}

export interface LeftBehind extends Behind {
  from: string;
}

/**
 * The checkout, when a process that moved run `tag`'s branch under it left it behind the
 * keeps; null when it did not, or while that process still runs. A record that no longer
 * describes the checkout (it followed, or the branch did not move) is dropped; one whose
 * checkout is elsewhere now stays, for when it comes back.
 */
export async function leftBehind(root: string, tag: string): Promise<LeftBehind | null> {
  const record = readFollowing(root, tag);
  if (!record || followedBy(root, tag) !== null) return null;
  const found = await checkoutState(root, branchRef(tag), record.from, record.at).catch(() => null);
  if (found?.state === "behind") return { ...found, from: record.from };
  // A commit the record names that git no longer has is no record to act on.
  if (found === null || found.state === "current" || found.state === "unmoved")
    clearFollowing(root, tag);
  return null;
}

export interface Mended {
  state: "followed" | "left";
  behind: LeftBehind;
}

/**
 * Brings a checkout a killed process left behind along, as the process would have:
 * "followed"; "left" when it cannot be done without touching the person's work (edits or
 * staged changes where the keeps changed files, files written since, a git operation in
 * progress): then the record stays, so that `doctor` goes on naming it.
 */
export async function mendCheckout(
  root: string,
  tag: string,
  ending = false,
): Promise<Mended | null> {
  const behind = await leftBehind(root, tag);
  // At its own end, a process whose checkout is off the branch has nothing left to record.
  if (!behind && ending && (await checkedOutAt(root, branchRef(tag))) === null)
    clearFollowing(root, tag);
  if (!behind) return null;
  const plan = followPlan(behind);
  if (!plan || !(await catchUp(root, plan))) return { state: "left", behind };
  clearFollowing(root, tag);
  return { state: "followed", behind };
}

/**
 * What bringing the checkout along would do, or null when it would touch the person's work
 * (edits or staged changes where the keeps changed files, files written since, a git
 * operation in progress).
 */
export function followPlan(behind: LeftBehind): Behind | null {
  return behind.inTheWay.length || behind.touched || behind.operation ? null : behind;
}

/**
 * How a person puts work that was in the way on top of the keeps: back on the commit whose
 * files the checkout holds, staged changes made edits again (a checkout refuses them), then
 * a checkout that carries the edits along (`-m` merges where a keep changed the same lines).
 * No stash: with nothing to stash, a pop would take out an older one of the person's.
 */
export function followAdvice(branch: string, behind: LeftBehind): string {
  const quit = behind.operation ? `git ${behind.operation} --quit && ` : "";
  // The index has the keeps already: only the files go back to it.
  if (behind.filesOnly.length)
    return `${quit}git checkout -- ${behind.filesOnly.map((p) => shellWord(`:(literal)${p}`)).join(" ")}`;
  const reset = behind.staged ? " && git reset -q" : "";
  const back = behind.at ?? behind.from;
  return `${quit}git update-ref --no-deref HEAD ${back}${reset} && git checkout -m ${branch}`;
}

/** What the person is told about each outcome of `mendCheckout`. */
export function mendNotice(branch: string, mended: Mended): string {
  const { behind } = mended;
  const at = (behind.filesOnly.length ? behind.from : (behind.at ?? behind.from)).slice(0, 7);
  if (mended.state === "followed")
    return `the checkout on ${branch} was left at ${at}, behind the keeps up to ${behind.tip.slice(0, 7)}, when a run or \`try\` stopped before bringing it along; it holds them now, and \`git status\` shows only your own changes`;
  return `${describeBehind(branch, behind)}; it was left as it is: ${howToFollow(branch, behind)}`;
}

/** The state, and why it was not brought along. */
export function describeBehind(branch: string, behind: LeftBehind): string {
  if (behind.filesOnly.length)
    return `the task's checkout is on ${branch} and its index has the keeps up to ${behind.tip.slice(0, 7)}, but ${listSome(behind.filesOnly)} still ${behind.filesOnly.length === 1 ? "holds its version" : "hold their versions"} of ${behind.from.slice(0, 7)} from before them (a stop left them so), so \`git status\` shows those keeps as undone edits`;
  const at = behind.at ? `the files of ${behind.at.slice(0, 7)}` : "changes of yours to files";
  const why = behind.operation
    ? `a ${behind.operation} of yours is in progress`
    : behind.inTheWay.length
      ? `your changes to ${listSome(behind.inTheWay)}, which the keeps changed too, are in the way`
      : behind.touched
        ? "files the keeps changed were written or staged since the run or `try` began, so this may be your own work (a revert you staged, say): if it is, leave it as it is"
        : "";
  return `the task's checkout is on ${branch}, but its index holds ${at} where later keeps changed them, so \`git status\` shows those keeps as undone and a commit now would revert them${why ? `; ${why}` : ""}`;
}

/** The commands, with what they do to the person's work. */
export function howToFollow(branch: string, behind: LeftBehind): string {
  const apart = behind.stagedApart.length
    ? ` (the staged versions of ${listSome(behind.stagedApart)} differ from the files and would be lost: save them first, for example \`git diff --cached > staged.patch\`)`
    : "";
  const staged = behind.staged ? `; your staged changes become edits${apart}` : "";
  const lead = !behind.operation && !behind.inTheWay.length && behind.touched ? "if not, " : "";
  return `${lead}\`${followAdvice(branch, behind)}\` puts your changes on top of the keeps${staged}; where a keep changed the lines you changed, git leaves conflict markers there to settle (then \`git reset -q\`); should git refuse, \`git symbolic-ref HEAD refs/heads/${branch}\` puts the checkout back as it was`;
}
