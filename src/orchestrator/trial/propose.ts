import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ProposalUsage, TrialRow, Verdict } from "../../ledger/types.js";
import type { ProposalResult, Reconcile, Researcher } from "../../researchers/researcher.js";
import { monotonic } from "../../util/clock.js";
import { writeJson } from "../../util/fs.js";
import { redactJson } from "../../util/secrets.js";
import { clip, oneLine, printable } from "../../util/text.js";
import { fileTimes, refuseBeforeCommit } from "../../workspace/guard.js";
import { TRIAL_FILES } from "../../workspace/layout.js";
import { setRef, trialRef } from "../../workspace/repo.js";
import { addWorktree, commitWorktree, diffCommits } from "../../workspace/worktree.js";
import type { RunContext } from "../context.js";

/** A trial ready to run (its commit), or refused before running (invalid, interrupted). */
export type Prepared = { commit: string } | { verdict: Verdict; reason: string; fatal: boolean };

/** The baseline's commit is the run's base: nothing to propose. */
export async function prepareBaseline(ctx: RunContext, trial: TrialRow): Promise<Prepared> {
  ctx.ledger.setTrialProposal(trial.id, {
    title: "baseline",
    hypothesis: "the unchanged code",
    proposeMs: 0,
  });
  ctx.ledger.setTrialCommit(trial.id, {
    commit: trial.parentCommit,
    commitMs: 0,
    linesAdded: 0,
    linesRemoved: 0,
  });
  await setRef(ctx.task.root, trialRef(ctx.run.tag, trial.n), trial.parentCommit);
  return { commit: trial.parentCommit };
}

/** A change rebased by a clean three-way merge: its commit exists, it only needs checking. */
export async function prepareRebase(
  ctx: RunContext,
  trial: TrialRow,
  dir: string,
  of: TrialRow,
  commit: string,
): Promise<Prepared> {
  ctx.ledger.setTrialProposal(trial.id, {
    title: `${carriedTitle(of.title)} (rebased from #${of.n})`,
    hypothesis: of.hypothesis,
    proposeMs: 0,
  });
  return recordCommit(ctx, trial, dir, commit, monotonic());
}

/**
 * Asks a researcher for a change in the trial's worktree, commits whatever it left there
 * (the commit is kept under the trial's ref before the paths are checked against the
 * editable globs). Not committed at all: a proposal whose researcher wrote outside the
 * worktree, and one holding a file too large or a credential.
 */
export async function prepareProposal(
  ctx: RunContext,
  trial: TrialRow,
  worktree: string,
  dir: string,
  researcher: Researcher,
  parentMetric: number | null,
  reconcile?: Reconcile,
): Promise<Prepared> {
  const { ledger, run, task } = ctx;
  const started = monotonic();
  const { watch } = ctx;
  let checkedOut = fileTimes(worktree);
  const ask = () => {
    // The whole run, copied only for a researcher that reads it (mutate looks up what was
    // tried on the parent instead): a copy per proposal grows with the run.
    let history: TrialRow[] | undefined;
    return researcher.propose({
      task,
      tag: run.tag,
      trial: trial.n,
      worktree,
      parent: { commit: trial.parentCommit, metric: parentMetric },
      get history() {
        history ??= ledger.finished(run.id);
        return history;
      },
      tried: ledger.triedOn(run.id, trial.parentCommit),
      // Read when asked, not when the proposal began: a researcher that asks again (tune)
      // sees trials started meanwhile. Carried changes by their own title; in a swarm, the
      // other hosts' too.
      get inFlight() {
        return [...[...ctx.inFlight.values()].map(carriedTitle), ...(ctx.swarm?.running ?? [])];
      },
      ...(ctx.swarm
        ? {
            elsewhere: ctx.swarm.recent,
            triedElsewhere: ctx.swarm.triedElsewhere(trial.parentCommit),
            runningElsewhere: new Set(ctx.swarm.running),
          }
        : {}),
      seed: run.seed,
      sandbox: ctx.sandbox,
      signal: ctx.signal,
      ...(reconcile ? { reconcile } : {}),
    });
  };
  let watched = await watch.watch(worktree, ask, trial.n);
  let usage = watched.value.usage;
  if (watched.changed && !watched.changed.certain && !ctx.signal.aborted) {
    // Files outside changed while other programs ran too: whose doing it was is told by
    // asking again, alone, from a fresh checkout. The first answer is not used.
    const files = watched.changed.files;
    ledger.event(run.id, trial.id, "suspect", { step: "proposal", files });
    ctx.emit({ type: "notice", text: suspectNotice(trial.n, "proposal", files) });
    await addWorktree(task.root, worktree, trial.parentCommit);
    checkedOut = fileTimes(worktree);
    watched = await watch.alone(worktree, ask, trial.n);
    usage = addUsage(usage, watched.value.usage);
    if (!watched.changed && !ctx.signal.aborted)
      ctx.emit({ type: "notice", text: clearedNotice(trial.n, "proposal") });
  }
  const answer = watched.value;
  const proposeMs = monotonic() - started;
  // Only a change known to be its own is the researcher's (one a stop left uncertain is not).
  const escaped = watched.changed?.certain ? watched.changed.files : [];
  // What a researcher says is recorded everywhere (ledger, commit message, reports): an
  // agent that echoes its API key must not leave it there.
  const full: ProposalResult = redactJson(
    escaped.length
      ? {
          ok: false,
          reason: `the researcher wrote outside its worktree: ${escaped.join(", ")}`,
          detail: answer.detail,
          ...(usage ? { usage } : {}),
        }
      : { ...answer, ...(usage ? { usage } : {}) },
  );
  const result = bounded(full);
  ledger.recordProposal(trial.id, {
    researcher: researcher.name,
    title: result.ok ? result.title : null,
    hypothesis: result.ok ? result.hypothesis : null,
    detail: result.detail,
    error: result.ok ? null : result.reason,
    durationMs: proposeMs,
    usage: result.usage ?? null,
  });
  // The trial's folder keeps what was cut from the ledger's copy, up to a limit.
  writeJson(join(dir, TRIAL_FILES.proposal), {
    researcher: researcher.name,
    ...full,
    ...(full.ok
      ? { title: clip(full.title, KEPT), hypothesis: clip(full.hypothesis, KEPT) }
      : { reason: clip(full.reason, KEPT) }),
    seconds: proposeMs / 1000,
  });
  if (!result.ok) {
    const verdict = ctx.signal.aborted ? "interrupted" : "invalid";
    return { verdict, reason: result.reason, fatal: result.fatal === true };
  }
  const title = reconcile
    ? `${carriedTitle(result.title)} (reconciled from #${reconcile.n})`
    : result.title;
  ledger.setTrialProposal(trial.id, { title, hypothesis: result.hypothesis, proposeMs });
  ctx.inFlight.set(trial.n, title);
  ctx.emit({ type: "proposal", n: trial.n, title });
  const unsafe = refuseBeforeCommit(worktree, checkedOut);
  if (unsafe) return { verdict: "invalid", reason: `not committed: ${unsafe}`, fatal: false };
  const commitStarted = monotonic();
  const message = `${title}\n\n${result.hypothesis}\n\nAutoresearch-Run: ${run.tag}\nAutoresearch-Trial: ${trial.n}\n`;
  const commit = await commitWorktree(worktree, trial.parentCommit, message);
  return recordCommit(ctx, trial, dir, commit, commitStarted);
}

/**
 * A title without the notes of earlier carries, so that a change carried again says only
 * where it came from last (not "(rebased from #4) (rebased from #8)").
 */
export const carriedTitle = (title: string | null) =>
  (title ?? "").replace(/( \((rebased|reconciled) from #\d+\))+$/, "");

/** What the terminal says when a step of a trial is one of several suspects. */
export const suspectNotice = (n: number, step: string, files: string[]) =>
  `#${n} ${files.join(", ")} changed outside the worktrees while other programs ran too (put back): its ${step} runs again alone, to tell whose doing it was`;

export const clearedNotice = (n: number, step: string) =>
  `#${n} its ${step} ran again alone and changed nothing outside: it goes on`;

/** Both answers' usage, when a proposal was asked for twice. */
function addUsage(a?: ProposalUsage, b?: ProposalUsage): ProposalUsage | undefined {
  if (!a || !b) return a ?? b;
  return {
    model: b.model,
    tokensIn: a.tokensIn + b.tokensIn,
    tokensOut: a.tokensOut + b.tokensOut,
    costUsd: a.costUsd === null || b.costUsd === null ? null : a.costUsd + b.costUsd,
    turns: a.turns + b.turns,
  };
}

/** How much of a researcher's text the trial's folder keeps. */
const KEPT = 1_000_000;

/**
 * A title is one line, a hypothesis or a reason a few KB, all without control characters:
 * they are recorded, committed, reported and printed, and fill the next researcher's brief.
 */
function bounded(result: ProposalResult): ProposalResult {
  return result.ok
    ? { ...result, title: oneLine(result.title), hypothesis: printable(result.hypothesis) }
    : { ...result, reason: printable(result.reason, 2000) };
}

/** Sets the trial's ref, records its diff, and checks the changed paths. */
export async function recordCommit(
  ctx: RunContext,
  trial: TrialRow,
  dir: string,
  commit: string,
  since: number,
): Promise<Prepared> {
  const root = ctx.task.root;
  // The ref is set before the paths are checked: whatever the verdict, it is never lost.
  const [, diff] = await Promise.all([
    setRef(root, trialRef(ctx.run.tag, trial.n), commit),
    diffCommits(root, trial.parentCommit, commit),
  ]);
  writeFileSync(join(dir, TRIAL_FILES.diff), diff.patch);
  ctx.ledger.setTrialCommit(trial.id, {
    commit,
    commitMs: monotonic() - since,
    linesAdded: diff.added,
    linesRemoved: diff.removed,
  });
  const scope = ctx.scope.check(diff.changes);
  if (!scope.ok) return { verdict: "invalid", reason: scope.reason, fatal: false };
  return { commit };
}
