/**
 * The task's own checkout, when it is on a run's branch: a session or a `try` moves the
 * branch under it and brings it along afterwards. Killed in between, it leaves the checkout
 * behind the keeps (`git status` shows them undone, and a commit would revert them). What
 * each such process records before it starts is what tells that state from a revert the
 * person staged, which looks the same and must never be touched.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { writeFileAtomic } from "../../util/fs.js";
import { paths } from "../../workspace/layout.js";
import { behindOn, branchRef, catchUp } from "../../workspace/repo.js";

/** Said before a process moves run `tag`'s branch while the checkout is on it at `from`. */
export function markFollowing(root: string, tag: string, from: string): void {
  writeFileAtomic(paths.following(root, tag), `${from}\n`);
}

export function clearFollowing(root: string, tag: string): void {
  rmSync(paths.following(root, tag), { force: true });
}

/** Where a killed process left the checkout, and the tip it missed; null when it did not. */
export async function leftBehind(
  root: string,
  tag: string,
): Promise<{ from: string; tip: string } | null> {
  const file = paths.following(root, tag);
  if (!existsSync(file)) return null;
  const from = readFileSync(file, "utf8").trim();
  const tip = await behindOn(root, branchRef(tag), from);
  return tip ? { from, tip } : null;
}

export interface Mended {
  state: "followed" | "left";
  from: string;
  tip: string;
}

/**
 * Brings a checkout a killed process left behind along, as the process would have: "followed",
 * "left" when edits of the person's to files the keeps changed are in the way (the record
 * stays, so `doctor` goes on naming it), null when it was not left behind (a record that
 * no longer describes the checkout is dropped).
 */
export async function mendCheckout(root: string, tag: string): Promise<Mended | null> {
  const behind = await leftBehind(root, tag);
  if (!behind) {
    clearFollowing(root, tag);
    return null;
  }
  if (!(await catchUp(root, behind.from, behind.tip))) return { state: "left", ...behind };
  clearFollowing(root, tag);
  return { state: "followed", ...behind };
}

/**
 * How a person puts edits that were in the way on top of the keeps: back at `from`, where
 * the edits were made, then a checkout that carries them (`-m` merges where a keep changed
 * the same lines, leaving conflict markers to settle). No stash: with nothing to stash, a
 * pop would take out an older one of the person's.
 */
export function followAdvice(branch: string, from: string): string {
  return `git update-ref --no-deref HEAD ${from} && git checkout -m ${branch}`;
}

/** The notice for each outcome of `mendCheckout`. */
export function mendNotice(branch: string, mended: Mended): string {
  if (mended.state === "followed")
    return `the checkout on ${branch} was left at ${mended.from.slice(0, 7)} when a run or \`try\` stopped before bringing it along; it now holds the keeps up to ${mended.tip.slice(0, 7)}, and \`git status\` shows only your own changes`;
  return `the checkout on ${branch} was left at ${mended.from.slice(0, 7)}, behind the keeps up to ${mended.tip.slice(0, 7)}, and your edits of files those keeps changed are in the way, so it was left as it is: \`git status\` shows the keeps as undone (a commit now would revert them) until \`${followAdvice(branch, mended.from)}\` puts your edits on top of them`;
}
