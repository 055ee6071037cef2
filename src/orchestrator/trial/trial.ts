import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { SetupError, SwarmError } from "../../errors.js";
import { fmt } from "../../judge/judge.js";
import { mean, sd } from "../../judge/stats.js";
import { ADOPTER, type NoiseFloor, type ReplicateRow, type TrialRow } from "../../ledger/types.js";
import type { Reconcile } from "../../researchers/researcher.js";
import { type AdvanceResult, type LineHead, SwarmUnreachableError } from "../../swarm/index.js";
import { monotonic } from "../../util/clock.js";
import { writeJson } from "../../util/fs.js";
import { readHead } from "../../util/safe-file.js";
import { paths, TRIAL_FILES } from "../../workspace/layout.js";
import { branchRef, setRef, trialRef } from "../../workspace/repo.js";
import { addWorktree, mergeOnto, removeWorktree } from "../../workspace/worktree.js";
import type { RunContext } from "../context.js";
import { AT_LIMIT_WAIT_MS, NOT_RUN, RemoteUnreachableError } from "../swarm.js";
import { countEstimate, noiseFloor } from "./judging.js";
import {
  carriedTitle,
  type Prepared,
  prepareBaseline,
  prepareProposal,
  prepareRebase,
  recordCommit,
} from "./propose.js";
import {
  type Attach,
  finishedReplicates,
  type ParentMetric,
  PendingParent,
  runReplicates,
  UNJUDGED,
  type Verdicted,
} from "./replicates.js";
import { verifyIncumbent } from "./verify.js";

/** A verdict, with the metrics when no replicate of the trial read them (a measurement taken elsewhere). */
type Step = Verdicted & { metrics?: Record<string, number> };

/** How many times one change may be carried onto a newer incumbent before it is dropped. */
const MAX_REBASES = 3;

/** What a trial is for. */
export type TrialJob =
  | { kind: "baseline" }
  | { kind: "proposal" }
  /** A win on an older parent, merged cleanly onto the incumbent: confirm it there. */
  | { kind: "rebase"; of: TrialRow; commit: string; parent: TrialRow }
  /** A win on an older parent that conflicts with the incumbent: a researcher re-applies it. */
  | { kind: "reconcile"; of: TrialRow; parent: TrialRow }
  /**
   * A trial an earlier orchestrator left in flight, with its commit: it goes on where it
   * stopped, following its cluster job (`attach`) or running its missing replicates again.
   */
  | { kind: "continue"; trial: TrialRow; attach?: Attach }
  /** Another host's keep, now the swarm's line: measured on this host's class, then built on. */
  | { kind: "adopt"; head: LineHead };

export interface TrialOutcome {
  trial: TrialRow;
  /** Set when the run cannot go on (a researcher that cannot work, a failed baseline). */
  fatal: string | null;
  /** Another trial this one calls for: the confirmation of a win on a newer incumbent. */
  follow: TrialJob | null;
}

/** A trial's record, made; what its worktree starts from and how the change gets there. */
interface Begun {
  trial: TrialRow;
  /** Pending when the parent is the baseline still running: its value once it has ended. */
  parentMetric: ParentMetric;
  /** The commit the worktree checks out; null when a followed job still runs in its own. */
  checkout: string | null;
  prepare: (worktree: string, dir: string) => Promise<Prepared>;
  attach?: Attach;
}

/** The unchanged code at the run's base commit; its spread is the noise floor. */
function beginBaseline(ctx: RunContext): Begun {
  const trial = newTrial(ctx, { baseline: true, parentCommit: ctx.run.baseCommit, by: "baseline" });
  return {
    trial,
    parentMetric: null,
    checkout: trial.parentCommit,
    prepare: () => prepareBaseline(ctx, trial),
  };
}

/**
 * A researcher's change to the incumbent, or to the commit being measured (the base commit
 * while the baseline runs, a head adopted while a class-mate measures it).
 */
function beginProposal(ctx: RunContext): Begun {
  const beside = ctx.measuring ?? null;
  const parent = beside ? null : ctx.ledger.incumbent(ctx.run.id);
  const researcher = ctx.nextResearcher();
  const trial = newTrial(ctx, {
    parentCommit: beside?.commit ?? parent?.commit ?? ctx.run.baseCommit,
    by: researcher.name,
  });
  const known = parent?.metric ?? null;
  return {
    trial,
    parentMetric: parent ? known : new PendingParent(measuredMetric(ctx, trial)),
    checkout: trial.parentCommit,
    prepare: (worktree, dir) => prepareProposal(ctx, trial, worktree, dir, researcher, known),
  };
}

/**
 * The metric of the measurement a trial was begun beside (the baseline, an adopted head),
 * once it has ended; null when it gave none (the run stops, and the trial is not judged).
 */
async function measuredMetric(ctx: RunContext, trial: TrialRow): Promise<number | null> {
  await ctx.measuring?.ended;
  return ctx.ledger.keptAt(ctx.run.id, trial.parentCommit)?.metric ?? null;
}

/** A win on an older parent, merged cleanly onto the incumbent: confirmed there. */
function beginRebase(ctx: RunContext, job: Extract<TrialJob, { kind: "rebase" }>): Begun {
  const trial = newTrial(ctx, {
    parentCommit: job.parent.commit!,
    by: "rebase",
    rebaseOf: job.of.n,
  });
  ctx.carrying.delete(job.of.n);
  return {
    trial,
    parentMetric: job.parent.metric,
    checkout: job.commit,
    prepare: (_, dir) => prepareRebase(ctx, trial, dir, job.of, job.commit),
  };
}

/** A win on an older parent that conflicts with the incumbent: a researcher re-applies it. */
function beginReconcile(ctx: RunContext, job: Extract<TrialJob, { kind: "reconcile" }>): Begun {
  const researcher = ctx.nextResearcher();
  const trial = newTrial(ctx, {
    parentCommit: job.parent.commit!,
    by: researcher.name,
    rebaseOf: job.of.n,
  });
  ctx.carrying.delete(job.of.n);
  const parentMetric = job.parent.metric;
  return {
    trial,
    parentMetric,
    checkout: trial.parentCommit,
    prepare: (worktree, dir) =>
      prepareProposal(
        ctx,
        trial,
        worktree,
        dir,
        researcher,
        parentMetric,
        reconcileOf(ctx, job.of),
      ),
  };
}

/**
 * Another host's keep that moved the swarm's line: its commit, fetched from the remote,
 * is measured here like a baseline (values compare only within a hardware class), and
 * then kept as the code this host builds on.
 */
function beginAdopt(ctx: RunContext, job: Extract<TrialJob, { kind: "adopt" }>): Begun {
  const parent = ctx.ledger.incumbent(ctx.run.id)!;
  const { head } = job;
  const trial = newTrial(ctx, { parentCommit: parent.commit!, by: ADOPTER });
  return {
    trial,
    parentMetric: null,
    checkout: null,
    prepare: async (worktree, dir) => {
      ctx.ledger.setTrialProposal(trial.id, {
        title: `${head.title ?? "a keep"} (adopted from ${head.host})`,
        hypothesis: head.hypothesis,
        proposeMs: 0,
      });
      try {
        await ctx.swarm!.fetchHead(head, () => ctx.limitReached?.() != null);
      } catch (error) {
        if (!(error instanceof RemoteUnreachableError) || ctx.signal.aborted) throw error;
        return fetchWaits(ctx, trial, error);
      }
      await addWorktree(ctx.task.root, worktree, head.commitSha);
      return recordCommit(ctx, trial, dir, head.commitSha, monotonic());
    },
  };
}

/**
 * An adoption whose head the remote did not give in the wait at the run's limit: recorded
 * as interrupted, and counted toward --max-trials so that the run ends at its limit;
 * `resume` adopts the head then (the interrupted one, without a commit, does not count).
 */
function fetchWaits(ctx: RunContext, trial: TrialRow, error: Error): Prepared {
  ctx.swarm!.leftToResume.add(trial.n);
  const when = `in the ${AT_LIMIT_WAIT_MS / 1000} s it is waited for once the run has reached its limit`;
  const resume = `\`autoresearch resume --tag ${ctx.run.tag}\``;
  ctx.emit({
    type: "notice",
    text: `swarm: #${trial.n} not adopted: ${error.message} ${when}; ${resume} adopts it once the remote answers; nothing is lost`,
  });
  const reason = `not adopted: ${error.message} ${when}; ${resume} adopts it`;
  return { verdict: "interrupted", reason, fatal: false };
}

/** A trial an earlier orchestrator left in flight: it goes on from its own commit. */
function beginContinue(ctx: RunContext, job: Extract<TrialJob, { kind: "continue" }>): Begun {
  const trial = job.trial;
  // An adoption is measured, not judged against its parent; a trial begun beside the
  // baseline waits for it to end again, or is not judged if it never can be.
  const measured = trial.baseline || trial.researcher === ADOPTER;
  const parent = measured ? null : ctx.ledger.keptAt(ctx.run.id, trial.parentCommit);
  const waits = !measured && !parent && ctx.measuring?.commit === trial.parentCommit;
  const unjudged = !measured && !parent && !waits;
  // Measured before the stop: judged before anything new starts from the incumbent.
  if (!job.attach && !unjudged && finishedReplicates(ctx, trial).length) ctx.judging.add(trial.n);
  return {
    trial,
    parentMetric: waits ? new PendingParent(measuredMetric(ctx, trial)) : (parent?.metric ?? null),
    // A followed cluster job still runs in its worktree; otherwise start from a clean one.
    checkout: job.attach || unjudged ? null : trial.commit!,
    prepare: async () =>
      unjudged
        ? { verdict: "interrupted", reason: UNJUDGED, fatal: false }
        : { commit: trial.commit! },
    ...(job.attach && !unjudged ? { attach: job.attach } : {}),
  };
}

function begin(ctx: RunContext, job: TrialJob): Begun {
  switch (job.kind) {
    case "baseline":
      return beginBaseline(ctx);
    case "proposal":
      return beginProposal(ctx);
    case "rebase":
      return beginRebase(ctx, job);
    case "reconcile":
      return beginReconcile(ctx, job);
    case "continue":
      return beginContinue(ctx, job);
    case "adopt":
      return beginAdopt(ctx, job);
  }
}

/** A new trial's record, announced. */
function newTrial(
  ctx: RunContext,
  t: { baseline?: boolean; parentCommit: string; by: string; rebaseOf?: number },
): TrialRow {
  const trial = ctx.ledger.createTrial({
    runId: ctx.run.id,
    baseline: t.baseline ?? false,
    parentCommit: t.parentCommit,
    researcher: t.by,
    rebaseOf: t.rebaseOf ?? null,
  });
  ctx.emit({
    type: "trial-start",
    n: trial.n,
    baseline: trial.baseline,
    ...(t.by === ADOPTER ? { adopt: true } : {}),
  });
  return trial;
}

/**
 * One trial, end to end: a worktree, a proposal, a commit kept under the trial's ref,
 * replicates until the judge decides against the trial's own parent, the verdict
 * recorded, and the branch advanced on a keep — or, when the incumbent moved on
 * meanwhile, the win carried onto the new incumbent for confirmation.
 * The trial's record is created before the first await, so callers can count it at once.
 */
export async function runTrial(ctx: RunContext, job: TrialJob): Promise<TrialOutcome> {
  const outcome = await runJob(ctx, job);
  // An interrupted adoption is no failure to build on the head: `resume` adopts it.
  const failed = outcome.trial.verdict !== "keep" && outcome.trial.verdict !== "interrupted";
  if (job.kind !== "adopt" || !failed || ctx.signal.aborted) return outcome;
  // Tried once: the host cannot build on the line, and says why.
  ctx.swarm!.adoptFailed(job.head);
  const log = join(paths.trial(ctx.task.root, ctx.run.tag, outcome.trial.n), TRIAL_FILES.log);
  return {
    ...outcome,
    fatal: `the swarm's line moved to ${job.head.host}'s keep "${job.head.title}", which this host (${ctx.swarm!.hardwareClass}) could not build on: ${outcome.trial.verdict}, ${outcome.trial.reason}. See ${log}; fix the cause, then \`autoresearch resume\``,
  };
}

async function runJob(ctx: RunContext, job: TrialJob): Promise<TrialOutcome> {
  const { ledger, run, task } = ctx;
  const begun = begin(ctx, job);
  let trial = begun.trial;
  // Known at once, or once the baseline beside which the trial began has ended.
  const pending = begun.parentMetric instanceof PendingParent ? begun.parentMetric : null;
  let parentMetric = pending ? null : (begun.parentMetric as number | null);
  const dir = paths.trial(task.root, run.tag, trial.n);
  mkdirSync(dir, { recursive: true });
  const worktree = paths.worktree(task.root, run.tag, trial.n);
  try {
    if (begun.checkout) await addWorktree(task.root, worktree, begun.checkout);
    const prepared = await begun.prepare(worktree, dir);
    if ("verdict" in prepared) {
      const step: Verdicted = {
        kind: "verdict",
        verdict: prepared.verdict,
        reason: prepared.reason,
        metric: null,
      };
      trial = finish(ctx, trial, step, parentMetric, 0);
      return { trial, fatal: prepared.fatal ? prepared.reason : null, follow: null };
    }
    const taken = claimable(job, trial)
      ? await ctx.swarm?.claim(trial, { ownTried: job.kind !== "proposal" })
      : null;
    if (taken) {
      const reason = `${NOT_RUN}${taken.message}`;
      ctx.emit({ type: "notice", text: `#${trial.n} ${reason}` });
      const step: Verdicted = { kind: "verdict", verdict: "discard", reason, metric: null };
      return { trial: finish(ctx, trial, step, parentMetric, 0), fatal: null, follow: null };
    }
    ledger.setTrialState(trial.id, "running");
    // A resumed trial's time includes its replicates run before the stop.
    const earlier =
      job.kind === "continue"
        ? finishedReplicates(ctx, trial).reduce((ms, r) => ms + (r.durationMs ?? 0), 0)
        : 0;
    const known = await measuredElsewhere(ctx, job, trial);
    // Waiting for a class-mate's measurement is not the trial's time either.
    const started = monotonic() - earlier;
    if (known)
      ctx.emit({
        type: "notice",
        text: `#${trial.n} not run here: its class ${ctx.swarm!.hardwareClass} has it measured by ${known.host} (${fmt(known.metric)})`,
      });
    const step: Step = known
      ? {
          kind: "verdict",
          verdict: "keep",
          reason: `measured on ${ctx.swarm!.hardwareClass} by ${known.host}`,
          metric: known.metric,
          metrics: known.metrics,
        }
      : await runReplicates(
          ctx,
          trial,
          worktree,
          prepared.commit,
          begun.parentMetric,
          begun.attach,
        );
    // A failed trial is concluded at once; one judged knows its parent by now.
    if (pending && (step.verdict === "keep" || step.verdict === "discard"))
      parentMetric = await pending.wait();
    const outcome = await conclude(
      ctx,
      trial,
      step,
      prepared.commit,
      parentMetric,
      // The wait for the baseline is not the trial's time.
      monotonic() - started - (pending?.waitedMs ?? 0),
    );
    if (outcome.trial.verdict === "keep") await verifyIncumbent(ctx, outcome.trial, worktree);
    return outcome;
  } catch (error) {
    // Stopped while waiting out an unreachable swarm: an interruption, not a failure.
    if (ctx.signal.aborted && error instanceof SwarmError) {
      const reason =
        error instanceof SwarmUnreachableError
          ? "stopped while the swarm's database was unreachable"
          : (error as Error).message;
      if (ledger.trialById(trial.id)?.state !== "done")
        trial = finish(
          ctx,
          trial,
          { kind: "verdict", verdict: "interrupted", reason, metric: null },
          parentMetric,
          0,
        );
      return { trial, fatal: null, follow: null };
    }
    // A harness failure (git, disk, setup) must not leave the trial looking in flight.
    if (ledger.trialById(trial.id)?.state !== "done") {
      // A failed setup is the task's, said once where the run stops; resume runs the trial again.
      const reason =
        error instanceof SetupError
          ? "stopped: the task's setup failed"
          : `stopped by an error of the harness: ${(error as Error).message}`;
      finish(
        ctx,
        trial,
        { kind: "verdict", verdict: "interrupted", reason, metric: null },
        parentMetric,
        0,
      );
    }
    throw error;
  } finally {
    ctx.inFlight.delete(trial.n);
    ctx.judging.delete(trial.n);
    ctx.watch.release(trial.n);
    await removeWorktree(task.root, worktree).catch(() => undefined);
  }
}

/** How many times the change `trial` tries was carried onto a newer incumbent before it. */
function carried(ctx: RunContext, trial: TrialRow): number {
  let count = 0;
  for (let t: TrialRow | null = trial; t?.rebaseOf != null; count++)
    t = ctx.ledger.trial(ctx.run.id, t.rebaseOf);
  return count;
}

/** What a researcher needs to re-apply a conflicting win: its title, reasoning and patch. */
function reconcileOf(ctx: RunContext, of: TrialRow): Reconcile {
  const patch = join(paths.trial(ctx.task.root, ctx.run.tag, of.n), TRIAL_FILES.diff);
  return {
    n: of.n,
    title: of.title ?? "",
    hypothesis: of.hypothesis ?? "",
    patch: readHead(patch, 10_000_000) ?? "",
    detail: ctx.ledger.proposal(of.id)?.detail ?? null,
  };
}

/**
 * A trial that beat its own parent becomes the incumbent if the incumbent is still that
 * parent. If another win landed meanwhile, this one is merged onto it and confirmed there
 * by a new trial (or, on a conflict, handed to a researcher to re-apply), unless the run
 * has reached its limit; it is recorded as a discard that says which. Decisions are taken
 * one at a time.
 */
async function conclude(
  ctx: RunContext,
  trial: TrialRow,
  step: Step,
  commit: string,
  parentMetric: number | null,
  runMs: number,
): Promise<TrialOutcome> {
  const { ledger, run, task } = ctx;
  if (step.verdict !== "keep") {
    const done = finish(ctx, trial, step, parentMetric, runMs);
    const fatal =
      trial.baseline && step.verdict !== "interrupted"
        ? `the baseline (the unchanged code) gave no usable result: ${step.verdict}, ${step.reason}. Its log is ${join(paths.trial(task.root, run.tag, trial.n), TRIAL_FILES.log)}. Fix the task, commit, then \`autoresearch resume --tag ${run.tag}\`: the run starts again from the new commit`
        : null;
    return { trial: done, fatal, follow: null };
  }
  // Waited for before the keep is decided (not while holding the turn, which the other
  // suspects may need to reach their own decisions).
  ctx.watch.release(trial.n);
  const unknown = !trial.baseline && (await ctx.watch.unknownMaker(trial.n));
  if (unknown && ctx.signal.aborted) {
    const reason =
      "stopped while the trials it ran beside ran alone, to tell whose doing a change outside the worktrees was";
    const done = finish(
      ctx,
      trial,
      { ...step, verdict: "interrupted", reason },
      parentMetric,
      runMs,
    );
    return { trial: done, fatal: null, follow: null };
  }
  if (unknown) {
    const reason = `${step.reason}, but files outside the worktrees changed while it and other trials ran, and run alone none of them changed them again: whose doing it was is unknown, so it is not kept`;
    const done = finish(ctx, trial, { ...step, verdict: "discard", reason }, parentMetric, runMs);
    return { trial: done, fatal: null, follow: null };
  }
  return ctx.serially(async () => {
    const current = ledger.incumbent(run.id);
    if (trial.baseline || !current || current.commit === trial.parentCommit) {
      const refused = await lineRefuses(ctx, trial, step, runMs);
      if (refused) {
        const done = finish(ctx, trial, refused, parentMetric, runMs);
        // An interrupted one waits for its line move, which `resume` makes.
        if (refused.verdict === "interrupted") return { trial: done, fatal: null, follow: null };
        // Recorded, so that a resume carries it still if the stop comes first.
        ledger.event(run.id, trial.id, "carry");
        ctx.swarm!.carries.push(done);
        return { trial: done, fatal: null, follow: null };
      }
      const done = finish(ctx, trial, step, parentMetric, runMs);
      if (!trial.baseline) await setRef(task.root, branchRef(run.tag), commit, trial.parentCommit);
      return { trial: done, fatal: null, follow: null };
    }
    // Counted from the record, so that a resume in between does not start the count again.
    const rebases = carried(ctx, trial) + 1;
    if (rebases > MAX_REBASES) {
      const reason = `${step.reason}, but the incumbent moved on ${MAX_REBASES} times while it was confirmed; dropped`;
      return {
        trial: finish(ctx, trial, { ...step, verdict: "discard", reason }, parentMetric, runMs),
        fatal: null,
        follow: null,
      };
    }
    // A carry is a new trial: none begins once the run is at its limit (--max-trials is
    // at most that many trials). The win stays recorded, and its commit under its ref.
    const limit = ctx.limitReached?.() ?? null;
    if (limit) {
      const reason = `${step.reason}, but #${current.n} was kept meanwhile; not carried onto it, since the run ${limit} (its change stays at ${trialRef(run.tag, trial.n)})`;
      return {
        trial: finish(ctx, trial, { ...step, verdict: "discard", reason }, parentMetric, runMs),
        fatal: null,
        follow: null,
      };
    }
    ctx.carrying.add(trial.n);
    const merged = await mergeCarried(ctx, trial, current, commit);
    const how = merged
      ? "merged onto it for confirmation"
      : "it conflicts with it, so a researcher re-applies it";
    const reason = `${step.reason}, but #${current.n} was kept meanwhile; ${how}`;
    const done = finish(ctx, trial, { ...step, verdict: "discard", reason }, parentMetric, runMs);
    // Recorded, so that a resume carries it still if the stop comes before its trial begins.
    ledger.event(run.id, trial.id, "carry");
    return { trial: done, fatal: null, follow: carryJob(done, current, merged) };
  });
}

/** A win on an older parent, merged onto `current` (null when the two conflict). */
function mergeCarried(ctx: RunContext, trial: TrialRow, current: TrialRow, commit: string) {
  const message = `${carriedTitle(trial.title)} (rebased from #${trial.n})\n\n${trial.hypothesis ?? ""}\n\nAutoresearch-Run: ${ctx.run.tag}\nAutoresearch-Rebase-Of: ${trial.n}\n`;
  return mergeOnto(ctx.task.root, current.commit!, commit, message);
}

/** The trial that confirms a carried win on `current`: its merge, or a researcher's redo. */
const carryJob = (of: TrialRow, parent: TrialRow, merged: string | null): TrialJob =>
  merged ? { kind: "rebase", of, commit: merged, parent } : { kind: "reconcile", of, parent };

/**
 * Wins to carry onto the incumbent (in a swarm, once that is the line's head again): those
 * the swarm's line refused (another host's keep came first), or `wins` (those an earlier
 * session decided to carry and stopped before it began their trials). The jobs that
 * confirm them there; the list is emptied.
 */
export async function carriedWins(
  ctx: RunContext,
  wins: TrialRow[] = ctx.swarm?.carries ?? [],
): Promise<TrialJob[]> {
  const current = ctx.ledger.incumbent(ctx.run.id);
  if (!current || ctx.swarm?.toAdopt(current.commit)) return [];
  const jobs: TrialJob[] = [];
  for (const trial of wins.splice(0)) {
    if (carried(ctx, trial) + 1 > MAX_REBASES) {
      ctx.emit({
        type: "notice",
        text: `#${trial.n} the incumbent moved on ${MAX_REBASES} times while it was carried: dropped`,
      });
      continue;
    }
    // Its carry event stays unanswered: a `resume` with room for it carries it.
    const limit = ctx.limitReached?.() ?? null;
    if (limit) {
      ctx.emit({
        type: "notice",
        text: `#${trial.n} is not carried onto the line's head: the run ${limit}; \`autoresearch resume --tag ${ctx.run.tag}\` with room for it carries it`,
      });
      continue;
    }
    ctx.carrying.add(trial.n);
    jobs.push(carryJob(trial, current, await mergeCarried(ctx, trial, current, trial.commit!)));
  }
  return jobs;
}

/**
 * Whether a trial's change must be claimed in the swarm before it runs: a proposal, and a
 * carried win too, whose diff on the newer head may have become a change another host
 * ran (a merge leaves out what the head already has). A carried win matching this host's
 * own earlier trial is no duplicate: it is the confirmation. A trial resumed here is
 * claimed again, its claim having lapsed while the host was down (not one that follows a
 * cluster job still running: that one is spent already).
 */
const claimable = (job: TrialJob, trial: TrialRow) =>
  !trial.baseline &&
  (job.kind === "proposal" ||
    job.kind === "reconcile" ||
    job.kind === "rebase" ||
    (job.kind === "continue" && !job.attach && trial.researcher !== ADOPTER));

/**
 * In a swarm, a keep moves the line: null when it did, else the trial as a discard, to be
 * carried onto the other host's keep that moved the line first (or as interrupted, its
 * move waiting for `resume`, when the database did not answer in time).
 */
async function lineRefuses(
  ctx: RunContext,
  trial: TrialRow,
  step: Verdicted,
  runMs: number,
): Promise<Verdicted | null> {
  if (!ctx.swarm || trial.baseline || trial.researcher === ADOPTER) return null;
  const metrics = ctx.ledger.replicates(trial.id).at(-1)?.metrics ?? {};
  const row = ctx.ledger.trialById(trial.id)!;
  const atLimit = () => ctx.limitReached?.() != null;
  let moved: AdvanceResult;
  try {
    moved = await ctx.swarm.advance(row, { metric: step.metric, metrics, runMs }, atLimit);
  } catch (error) {
    if (!(error instanceof SwarmUnreachableError)) throw error;
    return moveWaits(ctx, trial, step, error instanceof RemoteUnreachableError);
  }
  if (moved.ok) return null;
  const head = ctx.swarm.line;
  const why =
    moved.reason === "stale" || moved.reason === "other-parent"
      ? `the swarm's line moved first (to ${head.host ?? "another host"}'s keep "${head.title ?? ""}")`
      : `the swarm refused to move its line to it (${moved.reason})`;
  const reason = `${step.reason}, but ${why}; it is carried onto the line's head once this host has measured it`;
  return { ...step, verdict: "discard", reason };
}

/**
 * A keep whose push (`remote`) or line move the swarm did not take before the run's stop,
 * or soon after its limit: recorded as interrupted with its measurement, which `resume`
 * judges again and then pushes and moves the line (exactly once: the database knows a
 * move it made). It counts toward --max-trials meanwhile, so that the run ends at its limit.
 */
function moveWaits(ctx: RunContext, trial: TrialRow, step: Verdicted, remote: boolean): Verdicted {
  ctx.swarm!.leftToResume.add(trial.n);
  const when = ctx.signal.aborted
    ? "before the stop"
    : `in the ${AT_LIMIT_WAIT_MS / 1000} s it is waited for once the run has reached its limit`;
  const resume = `\`autoresearch resume --tag ${ctx.run.tag}\``;
  const away = remote ? "remote did not take its commit" : "database did not answer";
  if (!ctx.signal.aborted)
    ctx.emit({
      type: "notice",
      text: remote
        ? `swarm: #${trial.n} won on the line's head, but the ${away} ${when}: its push and the move of the line to it wait in this host's ledger, and ${resume} makes them once the remote answers; nothing is lost`
        : `swarm: #${trial.n} won on the line's head, but the ${away} ${when}: the move of the line to it waits in this host's ledger, and ${resume} makes it once the database answers; nothing is lost`,
    });
  const waits = remote
    ? `its push and move of the line wait, and ${resume} makes them`
    : `its move of the line waits, and ${resume} makes it`;
  const reason = `${step.reason}, but the swarm's ${away} ${when}: ${waits} (or carries the win onto a newer head)`;
  return { ...step, verdict: "interrupted", reason };
}

/** Records the verdict, the trial's metrics file and results.tsv; returns the updated row. */
export function finish(
  ctx: RunContext,
  trial: TrialRow,
  step: Step,
  parentMetric: number | null,
  runMs: number,
): TrialRow {
  const { ledger, run, task } = ctx;
  const replicates = ledger.replicates(trial.id);
  const metrics = step.metrics ?? replicates.at(-1)?.metrics ?? {};
  ledger.finishTrial(trial.id, {
    estimate: step.estimate ?? null,
    verdict: step.verdict,
    reason: step.reason,
    metric: step.metric,
    incumbentMetric: trial.baseline ? null : parentMetric,
    metrics,
    runMs,
  });
  countEstimate(ctx, step.estimate ?? null);
  const done = ledger.trialById(trial.id)!;
  if (trial.baseline && step.verdict === "keep") recordNoise(ctx, done, replicates);
  if (!trial.baseline && step.verdict === "keep") warnWithinNoise(ctx, done, parentMetric);
  writeJson(join(paths.trial(task.root, run.tag, trial.n), TRIAL_FILES.metrics), {
    verdict: done.verdict,
    reason: done.reason,
    metric: done.metric,
    incumbent_metric: done.incumbentMetric,
    estimate: done.estimate,
    metrics,
    replicates: replicates.map((r) => ({
      idx: r.idx,
      seed: r.seed,
      slot: r.slot,
      job_id: r.jobId,
      outcome: r.outcome,
      reason: r.reason,
      metric: r.metric,
      metrics: r.metrics,
      exit_code: r.exitCode,
      signal: r.signal,
      seconds: r.durationMs === null ? null : r.durationMs / 1000,
    })),
  });
  ctx.results.soon();
  ctx.swarm?.recorded(done);
  ctx.emit({
    type: "trial-end",
    n: trial.n,
    baseline: trial.baseline,
    title: done.title ?? "",
    verdict: step.verdict,
    metric: step.metric,
    reason: step.reason,
    best: ledger.incumbent(run.id)?.metric ?? null,
  });
  return done;
}

/**
 * The greedy judge keeps any gain; one smaller than the run's measured noise floor may be
 * luck (the original project once kept a change of random seed). Said, not refused.
 */
function warnWithinNoise(ctx: RunContext, trial: TrialRow, parentMetric: number | null): void {
  const noise = ctx.ledger.runById(ctx.run.id)?.noiseJson;
  const sd = noise ? (JSON.parse(noise) as NoiseFloor).sd : null;
  if (ctx.judge.name !== "greedy" || !sd || trial.metric === null || parentMetric === null) return;
  const gain = Math.abs(trial.metric - parentMetric);
  if (gain >= sd) return;
  const text = `#${trial.n} was kept by the greedy judge for a gain of ${fmt(gain)}, less than the run's noise (standard deviation ${fmt(sd)}): it may be luck; the confirm judge (judge: { policy: confirm }) keeps only gains that clear the noise`;
  ctx.ledger.event(ctx.run.id, trial.id, "keep-within-noise", { gain, sd });
  ctx.emit({ type: "notice", text });
}

/**
 * In a swarm, a commit that a host of this class measured already is not measured again,
 * nor one that a host of the class measures now (its measurement is waited for): the
 * line's head to adopt, or the starting commit, whose noise floor comes with it.
 */
async function measuredElsewhere(ctx: RunContext, job: TrialJob, trial: TrialRow) {
  if (!ctx.swarm) return null;
  // An adoption or a baseline resumed after a stop too, unless its replicates still run
  // on a cluster: the class may have measured that commit meanwhile.
  const resumed = job.kind === "continue" && !job.attach;
  if (resumed && trial.researcher === ADOPTER && trial.commit)
    return ctx.swarm.measured(trial.commit);
  const baseline = job.kind === "baseline" || (resumed && trial.baseline);
  if (!baseline && job.kind !== "adopt") return null;
  const { seeds, timeout } = ctx.task.stages[0]!;
  const known = await ctx.swarm.measurementOf(trial, {
    ...(job.kind === "adopt"
      ? {
          commit: job.head.commitSha,
          what: `host ${job.head.host}'s keep "${job.head.title ?? ""}"`,
        }
      : { commit: trial.parentCommit, what: "the baseline" }),
    // Only a baseline's measurement carries the noise floor the judge needs.
    noise: baseline && seeds > 1,
    // Its replicates one after another, each to its time limit, and a lease for the rest.
    waitMs: (seeds * timeout + 300) * 1000,
    meanwhile: ctx.run.maxTrials === null || ctx.ledger.countTrials(ctx.run.id) < ctx.run.maxTrials,
  });
  if (baseline && known?.noise) {
    const { seeds, values } = known.noise;
    ctx.ledger.setNoise(ctx.run.id, {
      trial: trial.n,
      seeds,
      values,
      mean: mean(values),
      sd: sd(values),
      at: Date.now(),
      measuredBy: known.host,
    });
  }
  return known;
}

/** The spread of unchanged code over seeds: the run's noise floor. */
function recordNoise(ctx: RunContext, trial: TrialRow, replicates: ReplicateRow[]): void {
  const ok = replicates.filter((r) => r.outcome === "ok" && r.metric !== null);
  if (ok.length < 2) return;
  // A baseline resumed after its class measured it takes that measurement: the class's
  // noise floor stays, not the replicates this host ran before its stop.
  const taken = noiseFloor(ctx);
  if (taken?.trial === trial.n && taken.measuredBy) return;
  const values = ok.map((r) => r.metric!);
  ctx.ledger.setNoise(ctx.run.id, {
    trial: trial.n,
    seeds: ok.map((r) => r.seed),
    values,
    mean: mean(values),
    sd: sd(values),
    at: Date.now(),
  });
}
