import { chmodSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { View } from "../executors/confine.js";
import type { Bind } from "../executors/sandbox.js";
import { paths } from "./layout.js";

/**
 * What sandboxed commands of a task see. Everywhere the task's checkout is read-only and
 * the harness's state folder (the ledger, other trials' worktrees and folders) is empty,
 * except what each kind of command works in.
 */
function taskView(root: string, writable: string[], readable: string[] = []): View {
  for (const dir of writable) mkdirSync(dir, { recursive: true });
  // Inside, a program runs as root without capabilities, but what it writes belongs to the
  // real root: a set-user-ID copy of a shell left in a worktree or a compile cache must be
  // out of every other user's reach. (Stripping the bits afterwards would race with other
  // sandboxes swapping links under the harness.)
  try {
    chmodSync(paths.state(root), 0o700);
  } catch {
    // Another user's folder: its owner decides who may enter it.
  }
  return {
    writable,
    readable: [root, ...readable],
    hidden: [paths.state(root)],
    binds: [],
    network: false,
  };
}

/**
 * A replicate: its worktree, its trial's folder (for its result file) and the compile
 * caches are writable, though not what the harness wrote in that folder (the diff, the
 * proposal, other replicates' logs), which reports and researchers read later; what setup
 * put in the task's cache is read-only; no network unless allowed.
 */
export function replicateView(
  root: string,
  worktree: string,
  resultFile: string,
  settings: { network: boolean; binds: Bind[] },
): View {
  const compile = paths.compileCaches(root);
  const trialDir = dirname(resultFile);
  const view = taskView(
    root,
    [worktree, trialDir, compile.inductor, compile.triton],
    [paths.cache(root)],
  );
  const frozen = readdirSync(trialDir, { withFileTypes: true })
    .filter((e) => e.isFile() && join(trialDir, e.name) !== resultFile)
    .map((e) => join(trialDir, e.name));
  return { ...view, frozen, network: settings.network, binds: settings.binds };
}

/** The task's setup: it fills the cache (downloads, tokenizers), so the cache is writable and the network on. */
export function setupView(root: string, worktree: string, binds: Bind[]): View {
  return { ...taskView(root, [worktree, paths.cache(root)]), network: true, binds };
}

/**
 * A researcher that edits its worktree: the worktree (and its own `scratch` folders) alone
 * is writable, besides its configuration folders in `binds`; it calls its API.
 */
export function researcherView(
  root: string,
  worktree: string,
  binds: Bind[],
  scratch: string[] = [],
): View {
  return { ...taskView(root, [worktree, ...scratch]), network: true, binds };
}
