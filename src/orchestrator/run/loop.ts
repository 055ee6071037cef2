import type { RunStatus, Verdict } from "../../ledger/types.js";
import { monotonic } from "../../util/clock.js";
import { processStartTime } from "../../util/proc.js";
import type { Measuring, RunContext } from "../context.js";
import { pendingCarries } from "../swarm.js";
import { carriedWins, runTrial, type TrialJob } from "../trial/trial.js";
import { promote, promoteJob } from "./promote.js";

/** Rules that end a run from what its trials show, kept with the run. */
export interface Stops {
  /** Dollars per GPU-hour, counted against the budget (maxUsd). */
  gpuHourUsd: number;
  /** Trials in a row that fail (crash, timeout, invalid, tampered) before the run stops; 0: never. */
  maxFailures: number;
  /** Trials in a row without a keep before the run finishes; null: never. */
  plateau: number | null;
}

export const DEFAULT_STOPS: Stops = { gpuHourUsd: 0, maxFailures: 10, plateau: null };

const FAILED: ReadonlySet<Verdict> = new Set(["crash", "timeout", "invalid", "tampered"]);

export interface Limits {
  stops: Stops;
  /** When this session started: the stop rules look at trials finished since. */
  since: number;
  /** Total trials of the run, the baseline included (confirmations of wins too). */
  maxTrials: number | null;
  /** The moment (on the monotonic clock) after which no new trial starts. */
  deadline: number | null;
  /** Dollars (researchers' spending plus GPU time) after which no new trial starts. */
  maxUsd: number | null;
  /** Replicates after which no new trial starts (a compute budget). */
  maxReplicates?: number | null;
  /** Trials proposed ahead of free slots (default: one per slot, none for instant researchers). */
  lookahead?: number;
  /** Trials left in flight by an earlier orchestrator, to finish first. */
  resumed?: TrialJob[];
  /** Nothing begins beside the baseline (as in a swarm, where the line it measures is shared). */
  baselineAlone?: boolean;
}

const isBaseline = (job: TrialJob) =>
  job.kind === "baseline" || (job.kind === "continue" && job.trial.baseline);

/**
 * The commit a job measures as it is, on which trials may begin beside it: the baseline's,
 * or a line head adopted in a swarm (beside it only while a class-mate measures it).
 */
function measures(ctx: RunContext, job: TrialJob): Omit<Measuring, "ended"> | null {
  if (job.kind === "baseline") return { commit: ctx.run.baseCommit, what: "the baseline" };
  if (job.kind === "continue" && job.trial.baseline)
    return { commit: job.trial.parentCommit, what: "the baseline" };
  if (job.kind === "adopt")
    return { commit: job.head.commitSha, what: "the adopted head's measurement" };
  return null;
}

export interface LoopEnd {
  status: Exclude<RunStatus, "running">;
  reason: string;
  /** Stopped by a stop rule (--max-failures), not by a person. */
  byRule?: boolean;
}

/** The run's end in the ledger: its status and a `run-end` event. */
function recordEnd(ctx: RunContext, result: LoopEnd): void {
  ctx.ledger.setRunStatus(ctx.run.id, result.status, result.reason);
  ctx.ledger.event(ctx.run.id, null, "run-end", result);
}

/** Ends the run: recorded, then said. */
export function endRun(ctx: RunContext, result: LoopEnd): LoopEnd {
  recordEnd(ctx, result);
  ctx.emit({ type: "run-end", ...result });
  return result;
}

/**
 * Runs trials until a limit is reached, the run is stopped, or it cannot go on. As many
 * trials are in flight as there are slots plus the lookahead, so researchers propose while
 * slots are busy and a slot waits only for a researcher slower than an experiment. Trials
 * begun while the baseline runs are judged once it has ended (unless it runs alone).
 * Confirmations of wins made on an older incumbent go first. The run is marked as owned
 * by this process while the loop runs.
 */
export async function drive(ctx: RunContext, limits: Limits): Promise<LoopEnd> {
  const { ledger, run } = ctx;
  ledger.setOwner(run.id, process.pid, processStartTime(process.pid));
  ledger.setRunStatus(run.id, "running");
  const record = (result: LoopEnd) => recordEnd(ctx, result);
  const end = (result: LoopEnd) => endRun(ctx, result);
  const instant = ctx.researchers.every((r) => r.instant);
  // A trial proposed ahead waits for a slot; with overlap it prepares on one meanwhile.
  const overlaps = ctx.task.overlap && ctx.executor.kind === "local";
  const ahead = instant && !overlaps ? 0 : ctx.executor.slots.length;
  const capacity = ctx.executor.slots.length + (limits.lookahead ?? ahead);
  // A resumed baseline first: trials resumed beside it wait for it.
  const follows: TrialJob[] = [...(limits.resumed ?? [])].sort(
    (a, b) => Number(isBaseline(b)) - Number(isBaseline(a)),
  );
  const alone = limits.baselineAlone || ctx.swarm !== undefined;
  const pool = new Set<Promise<void>>();
  let fatal: string | null = null;
  let failure: unknown = null;

  const promoteEvery = ctx.task.promoteEvery;
  const keeps = () =>
    ledger.trials(run.id).filter((t) => t.verdict === "keep" && !t.baseline).length;
  const track = (p: Promise<void>) => {
    const tracked: Promise<void> = p
      .catch((error) => {
        failure ??= error;
      })
      .finally(() => pool.delete(tracked));
    pool.add(tracked);
  };
  const start = (job: TrialJob): Promise<void> => {
    const p: Promise<void> = runTrial(ctx, job)
      .then((outcome) => {
        fatal ??= outcome.fatal;
        if (outcome.follow) follows.push(outcome.follow);
        // Every N keeps, the incumbent is tried at the next stage of the ladder (in a swarm,
        // every N versions of the line, by a host that can run that stage).
        if (
          outcome.trial.verdict === "keep" &&
          !outcome.trial.baseline &&
          promoteEvery &&
          ctx.task.stages.length > 1 &&
          !ctx.swarm
        )
          if (keeps() % promoteEvery === 0)
            track(
              promote(ctx).then(
                () => undefined,
                // Recorded as failed in the ledger; the search goes on.
                (error: Error) => {
                  if (!ctx.signal.aborted)
                    ctx.emit({ type: "notice", text: `promotion failed: ${error.message}` });
                },
              ),
            );
      })
      .catch((error) => {
        failure ??= error;
      })
      .finally(() => pool.delete(p));
    pool.add(p);
    const measured = measures(ctx, job);
    if (measured)
      ctx.measuring = {
        ...measured,
        ended: p.finally(() => {
          ctx.measuring = null;
        }),
      };
    return p;
  };
  /** Why no new proposal may start, or null. */
  const limitReached = (): LoopEnd | null => {
    // A trial whose part in the swarm waits for resume (a keep's line move, an adoption's
    // fetch) counts, as it will once resume has made it; so does a carry decided and not
    // yet begun.
    const count =
      ledger.countTrials(run.id) + (ctx.swarm?.leftToResume.size ?? 0) + ctx.carrying.size;
    if (limits.maxTrials !== null && count >= limits.maxTrials)
      return { status: "finished", reason: `reached --max-trials ${limits.maxTrials}` };
    if (limits.maxReplicates && ledger.countReplicates(run.id) >= limits.maxReplicates)
      return { status: "finished", reason: `reached --max-replicates ${limits.maxReplicates}` };
    if (limits.deadline !== null && monotonic() >= limits.deadline)
      return { status: "finished", reason: "reached --max-hours" };
    if (limits.maxUsd !== null) {
      const researchers = ledger.spentUsd(run.id);
      const gpuHours = ledger.gpuSeconds(run.id, ctx.task.resources.gpus) / 3600;
      const gpus = gpuHours * limits.stops.gpuHourUsd;
      if (researchers + gpus >= limits.maxUsd) {
        const parts = [`$${researchers.toFixed(4)} on researchers`];
        if (limits.stops.gpuHourUsd > 0)
          parts.push(`$${gpus.toFixed(4)} on ${gpuHours.toFixed(3)} GPU-hours`);
        return {
          status: "finished",
          reason: `reached --budget-usd ${limits.maxUsd}: ${parts.join(" and ")}`,
        };
      }
    }
    return null;
  };
  ctx.limitReached = () => limitReached()?.reason ?? null;
  /** Why the trials so far say the run should end, or null. */
  const stopRule = (): LoopEnd | null => {
    const { maxFailures, plateau } = limits.stops;
    if (maxFailures > 0) {
      const recent = ledger.recentVerdicts(run.id, limits.since, maxFailures);
      if (recent.length === maxFailures && recent.every((v) => FAILED.has(v))) {
        const counts = [...new Set(recent)].map(
          (v) => `${recent.filter((r) => r === v).length} ${v}`,
        );
        return {
          status: "stopped",
          byRule: true,
          reason: `${maxFailures} trials in a row failed (${counts.join(", ")}): see their reasons with \`autoresearch status --trials ${maxFailures}\`, fix the cause, then \`autoresearch resume\` (--max-failures sets the limit)`,
        };
      }
    }
    if (plateau) {
      const recent = ledger.recentVerdicts(run.id, limits.since, plateau);
      if (recent.length === plateau && !recent.includes("keep"))
        return { status: "finished", reason: `plateau: no keep in the last ${plateau} trials` };
    }
    return null;
  };
  let ruled: LoopEnd | null = null;
  // In a swarm the baseline, and an adopted head, is measured alone, unless it waits for a
  // class-mate's measurement.
  const beside = () => !alone || ctx.swarm?.awaitingMeasurement === true;
  // While a commit is measured, trials that wait for it to be judged hold no slot, nor a
  // swarm measurement that waits for its class-mate's: the slots take more trials meanwhile.
  // No more wait than the replicates of a measurement would fill on every slot, so that
  // fast trials beside a slow measurement do not pile up unjudged.
  const waitingAtMost = capacity * ctx.task.stages[0]!.seeds;
  const busy = () =>
    ctx.measuring
      ? pool.size -
        Math.min(ctx.judging.size, waitingAtMost) -
        (ctx.swarm?.awaitingMeasurement ? 1 : 0)
      : pool.size;

  // In a swarm, another host's keep is adopted (measured here) before anything more is
  // built on the old head; wins the line refused meanwhile are carried onto it after.
  const swarm = ctx.swarm;
  // Wins an earlier session decided to carry and stopped before their trials began (in a
  // swarm, the link carries them with the wins its line refused).
  const stranded = swarm ? [] : pendingCarries(ledger, run.id);
  let adopting: Promise<void> | null = null;
  let promoting = false;
  let asked = { commit: "", at: 0 };

  try {
    for (;;) {
      ruled ??= stopRule();
      fatal ??= swarm?.failure ?? null;
      const halted = ctx.signal.aborted || fatal !== null || failure !== null || ruled !== null;
      const baselineKept = ledger.incumbent(run.id) !== null;
      if (swarm && baselineKept && !halted) follows.push(...(await carriedWins(ctx)));
      if (stranded.length && baselineKept && !halted)
        follows.push(...(await carriedWins(ctx, stranded)));
      // A promotion the swarm asks for, on the head this host stands on, runs beside trials;
      // asked for when the head changes, else every half minute at most.
      const standing = ledger.incumbent(run.id)?.commit;
      const due = standing !== asked.commit || monotonic() - asked.at > 30_000;
      // A host about to adopt a newer head does not promote the one it leaves.
      const behind = swarm?.toAdopt(standing ?? null) != null;
      if (swarm && standing && due && !behind && !halted && !promoting && !limitReached()) {
        asked = { commit: standing, at: monotonic() };
        promoting = true;
        track(
          swarm
            .takePromotion(standing)
            .then((job) => (job ? promoteJob(ctx, job) : undefined))
            .finally(() => {
              promoting = false;
            }),
        );
      }
      while (!halted && busy() < capacity) {
        if (swarm && baselineKept && !adopting) {
          const head = swarm.toAdopt(ledger.incumbent(run.id)?.commit ?? null);
          if (head && !limitReached()) {
            adopting = start({ kind: "adopt", head }).finally(() => {
              adopting = null;
            });
            break;
          }
        }
        const measuring = ctx.measuring != null;
        // Trials measured are judged before anything new is built on the incumbent (those
        // beside a measurement once it has ended).
        const judging = baselineKept && !measuring && ctx.judging.size > 0;
        // The baseline before any other trial: those resumed beside it wait for it.
        if (!baselineKept && !measuring && !follows.some(isBaseline) && !limitReached())
          start({ kind: "baseline" });
        // While a head is adopted, only proposals on it, beside a class-mate's measurement.
        else if (follows.length && !adopting) start(follows.shift()!);
        else if (!judging && (measuring ? beside() : baselineKept) && !limitReached())
          start({ kind: "proposal" });
        else break;
      }
      if (pool.size === 0) break;
      const nudged = new Promise<void>((resolve) => {
        ctx.nudge = resolve;
      });
      await Promise.race([...pool, nudged, ...(swarm ? [swarm.moved()] : [])]);
    }
  } finally {
    ctx.nudge = undefined;
    ledger.setOwner(run.id, null, null);
  }
  if (failure) {
    try {
      // Recorded, not shown: the caller reports the error it is thrown.
      record({ status: "failed", reason: (failure as Error).message });
    } catch {
      // The ledger may be what failed (a full disk); the run is left "running" for
      // resume to recover, and the first error is the one to report.
    }
    throw failure;
  }
  // A win whose carry onto the newer incumbent was decided but not begun (the stop or the
  // limit came first) is recorded; said, so that the end's summary does not hide it.
  const waiting = pendingCarries(ledger, run.id).map((t) => `#${t.n}`);
  if (waiting.length)
    ctx.emit({
      type: "notice",
      text: `${waiting.join(", ")} won on an older incumbent and ${waiting.length > 1 ? "wait" : "waits"} to be carried onto the newer one: \`autoresearch resume --tag ${run.tag}\` carries ${waiting.length > 1 ? "them" : "it"}${limits.maxTrials !== null && limitReached() ? ", given a larger --max-trials" : ""}`,
    });
  if (ctx.signal.aborted) return end({ status: "stopped", reason: "stopped by the user" });
  if (fatal) return end({ status: "failed", reason: fatal });
  if (ruled) return end(ruled);
  return end(limitReached() ?? { status: "finished", reason: "nothing left to run" });
}
