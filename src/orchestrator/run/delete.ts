import { rmSync } from "node:fs";
import { UsageError, WorkspaceError } from "../../errors.js";
import { git } from "../../workspace/git.js";
import { paths } from "../../workspace/layout.js";
import { branchName, branchRef, resolveRef } from "../../workspace/repo.js";
import { removeWorktree } from "../../workspace/worktree.js";
import { withExistingRun } from "./open.js";
import { checkOwner, recover } from "./recover.js";

export interface Deletion {
  tag: string;
  /** What goes (or went, with `yes`). */
  items: string[];
  deleted: boolean;
}

/**
 * `autoresearch delete`: a run's records, trial refs, branch, worktrees and files. Without
 * `yes`, only what would go. Files go first and the ledger last, so a delete stopped
 * halfway leaves the run listed, and running it again finishes.
 */
export function deleteRun(options: { root: string; tag: string; yes: boolean }): Promise<Deletion> {
  if (!options.tag) throw new UsageError("--tag: name the run to delete");
  return withExistingRun(options.root, options.tag, "delete", async (task, ledger, run) => {
    checkOwner(run, "deleting it");
    const refs = (
      await git(task.root, ["for-each-ref", "--format=%(refname)", `refs/autoresearch/${run.tag}/`])
    )
      .split("\n")
      .filter(Boolean);
    const branch = (await resolveRef(task.root, branchRef(run.tag))) ? branchName(run.tag) : null;
    const current = await git(task.root, ["symbolic-ref", "--quiet", "HEAD"]).catch(() => "");
    if (branch && current === branchRef(run.tag))
      throw new WorkspaceError(
        `the checkout is on ${branch}; check out the branch you work on first (git switch <branch>), then delete`,
      );
    const trials = ledger.trials(run.id).length;
    const items = [
      `${trials} trial(s) and their replicates, proposals and events in the ledger`,
      `${refs.length} trial ref(s) under refs/autoresearch/${run.tag}/`,
      ...(branch ? [`branch ${branch}${await onlyHere(task.root, run.tag)}`] : []),
      `the folder ${paths.run(task.root, run.tag)}`,
    ];
    if (!options.yes) return { tag: run.tag, items, deleted: false };
    // A replicate a killed orchestrator left running must not outlive its run.
    await recover(task, ledger, run);
    for (const trial of ledger.trials(run.id))
      await removeWorktree(task.root, paths.worktree(task.root, run.tag, trial.n)).catch(
        () => undefined,
      );
    for (const ref of refs) await git(task.root, ["update-ref", "-d", ref]);
    if (branch) await git(task.root, ["update-ref", "-d", branchRef(run.tag)]);
    rmSync(paths.run(task.root, run.tag), { recursive: true, force: true });
    ledger.deleteRun(run.id);
    return { tag: run.tag, items, deleted: true };
  });
}

/**
 * The kept changes on the run's branch that no other branch holds, said beside it: deleted,
 * they are gone but for git's reflog (a change made with `try` is nowhere else).
 */
async function onlyHere(root: string, tag: string): Promise<string> {
  const count = Number(
    await git(root, [
      "rev-list",
      "--count",
      branchRef(tag),
      "--not",
      // Matched without refs/heads/, as --branches names them.
      `--exclude=${branchName(tag)}`,
      "--branches",
    ]),
  );
  if (count === 0) return "";
  return `, with ${count} commit(s) no other branch holds (its kept changes): to keep them, \`git branch <name> ${branchName(tag)}\` first`;
}
