import { lstatSync, mkdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import picomatch from "picomatch";
import type { JudgeStep, Replicated } from "../../judge/judge.js";
import type { ReplicateRow, TrialRow } from "../../ledger/types.js";
import { logTail } from "../../metrics/outcome.js";
import { monotonic } from "../../util/clock.js";
import { processStartTime } from "../../util/proc.js";
import { describePlanted, removeEntry, removePlanted } from "../../util/safe-file.js";
import { changedFiles, type FileTimes, fileTimes } from "../../workspace/guard.js";
import {
  isTrialFile,
  paths,
  replicateJob,
  replicateLog,
  replicateResult,
  TASK_FILE,
} from "../../workspace/layout.js";
import { protectedFingerprint, tamperedFiles } from "../../workspace/protect.js";
import type { RunContext } from "../context.js";
import { judgeContext } from "./judging.js";
import { clearedNotice, suspectNotice } from "./propose.js";
import { runReplicate } from "./replicate.js";
import { ensureSetup } from "./setup.js";

export type Verdicted = Extract<JudgeStep, { kind: "verdict" }>;

/** Why a trial begun beside a measurement (the baseline, an adopted head) has no verdict. */
export const UNJUDGED =
  "not judged: the code it changes (the baseline, or a head being adopted) gave no usable result";

/**
 * The parent of a trial begun beside the baseline: the baseline's metric once it has
 * ended (null when it gave none). The time spent waiting for it is counted apart: it is
 * not the trial's.
 */
export class PendingParent {
  waitedMs = 0;
  /** Aborted when the baseline has ended without a result: the trial's replicates end too. */
  readonly failed = new AbortController();

  constructor(private readonly metric: Promise<number | null>) {
    void metric.then((m) => {
      if (m === null) this.failed.abort();
    });
  }

  async wait(): Promise<number | null> {
    const from = monotonic();
    try {
      return await this.metric;
    } finally {
      this.waitedMs += monotonic() - from;
    }
  }
}

/** The parent's metric: known, or the baseline's still to come. */
export type ParentMetric = number | null | PendingParent;

const unjudged: Verdicted = {
  kind: "verdict",
  verdict: "interrupted",
  reason: UNJUDGED,
  metric: null,
};

/** A replicate left running by an earlier orchestrator that the executor can follow. */
export interface Attach {
  replicate: ReplicateRow;
  jobId: string;
}

/** A trial's replicates that finished with a result. */
export function finishedReplicates(ctx: RunContext, trial: TrialRow): ReplicateRow[] {
  return (
    ctx.ledger
      .replicates(trial.id)
      // An interrupted replicate (the orchestrator stopped) is run again, not judged.
      .filter((r) => r.state === "done" && r.outcome !== null && r.outcome !== "interrupted")
  );
}

/** Replicates already finished, as the judge sees them. */
function doneSoFar(ctx: RunContext, trial: TrialRow): Replicated[] {
  return finishedReplicates(ctx, trial).map((r) => ({
    seed: r.seed,
    result: { outcome: r.outcome!, reason: r.reason, metric: r.metric, metrics: r.metrics },
  }));
}

/** Replicates that might write these are not tampering, whatever the task declares. */
const ALWAYS_OUTPUTS = ["**/__pycache__/**", "**/*.pyc"];

/**
 * Paths the replicate changed at run time outside the editable files and the declared
 * outputs: new, changed or deleted files, ignored ones included, by their size and
 * modification time before and after (no git process; staging cannot hide a change).
 */
function undeclaredChanges(ctx: RunContext, worktree: string, before: FileTimes): string[] {
  const declared = picomatch([...ctx.task.outputs, ...ALWAYS_OUTPUTS], { dot: true });
  return changedFiles(worktree, before)
    .filter((p) => !ctx.scope.isEditable(p) && !declared(p))
    .sort();
}

/**
 * Runs replicates until the judge has a verdict, comparing with the trial's own parent.
 * A replicate that changes a protected file, or the harness's files or the user's checkout
 * outside its worktree, ends the trial as tampered. With `attach`,
 * the first replicate is one already submitted by an earlier orchestrator. A parent still
 * being measured (the baseline, an adopted head) is waited for after the first replicate,
 * whose seed is the same whatever the parent; its replicates end if that measurement fails.
 */
export async function runReplicates(
  ctx: RunContext,
  trial: TrialRow,
  worktree: string,
  commit: string,
  parentMetric: ParentMetric,
  attach?: Attach,
  /** Run exactly these seeds instead of asking the judge (a noise measurement). */
  seeds?: number[],
): Promise<Verdicted> {
  const { ledger, run, task } = ctx;
  const expected = await protectedFingerprint(task.root, commit, task.protected);
  const dir = paths.trial(task.root, run.tag, trial.n);
  mkdirSync(paths.cache(task.root), { recursive: true });
  const done = doneSoFar(ctx, trial);
  const parent = parentMetric instanceof PendingParent ? parentMetric : null;
  let context = judgeContext(ctx, trial, parent ? null : (parentMetric as number | null));
  // Beside a measurement, a replicate ends when that fails: nothing could judge it.
  const replicateCtx = parent
    ? { ...ctx, signal: AbortSignal.any([ctx.signal, parent.failed.signal]) }
    : ctx;
  let waiting = parent;
  const stage = task.stages[0]!;
  let pending = attach;
  const { watch } = ctx;
  // Set once files outside changed while this trial's replicate and other programs ran:
  // from then on its replicates run alone, so that a change is known to be its own.
  let alone = false;
  for (;;) {
    if (parent?.failed.signal.aborted && !ctx.signal.aborted) return unjudged;
    if (waiting && done.length) {
      // Judged before anything new is built on the measured commit (the loop waits for
      // these); a failure too, which may be that commit's own.
      ctx.judging.add(trial.n);
      if (ctx.measuring) {
        ctx.emit({
          type: "notice",
          text: `#${trial.n} measured: judged once ${ctx.measuring.what} has ended`,
        });
        ctx.nudge?.(); // its slot is free for the next proposal
      }
      const metric = await waiting.wait();
      waiting = null;
      if (metric === null)
        return ctx.signal.aborted
          ? {
              kind: "verdict",
              verdict: "interrupted",
              reason: "stopped before the baseline ended",
              metric: null,
            }
          : unjudged;
      context = judgeContext(ctx, trial, metric);
    }
    const fixed = seeds?.shift();
    const step: JudgeStep = !seeds
      ? ctx.judge.next(context, done)
      : fixed !== undefined
        ? { kind: "replicate", seed: fixed }
        : { kind: "verdict", verdict: "keep", reason: "measured", metric: null };
    if (step.kind === "verdict") return step;
    // Running again: not about to be judged.
    ctx.judging.delete(trial.n);
    const stopped: Verdicted = {
      kind: "verdict",
      verdict: "interrupted",
      reason: "stopped before it ran",
      metric: null,
    };
    if (!pending && (ctx.signal.aborted || !(await ensureSetup(ctx, worktree, commit))))
      return stopped;

    const idx = pending?.replicate.idx ?? ledger.replicates(trial.id).length;
    const logPath = join(dir, replicateLog(idx));
    const replicateId =
      pending?.replicate.id ??
      ledger.startReplicate({ trialId: trial.id, idx, seed: step.seed, slot: null, logPath });
    const seed = pending?.replicate.seed ?? step.seed;
    const title = ledger.trialById(trial.id)?.title ?? "";
    const files = fileTimes(worktree);
    const go = () =>
      runReplicate(replicateCtx, {
        name: replicateJob(run.tag, trial.n, idx),
        worktree,
        stage,
        trial: trial.n,
        idx,
        seed,
        logPath,
        resultPath: join(dir, replicateResult(idx)),
        attach: pending?.jobId,
        onStart: ({ slot, pid, jobId }) => {
          ledger.setReplicateProcess(replicateId, {
            slot: slot.id,
            pid: pid ?? null,
            pidStart: pid ? processStartTime(pid) : null,
            jobId: jobId ?? null,
            gpus: slot.gpus?.join(",") ?? null,
          });
          ctx.emit({
            type: "replicate-start",
            n: trial.n,
            idx,
            slot: slot.id,
            title,
            budget: stage.budget,
            startedAt: Date.now(),
          });
        },
        onRunning: (at) => {
          ledger.setReplicateRunning(replicateId, at);
          ctx.emit({ type: "replicate-running", n: trial.n, idx, at });
        },
      });
    const watched = alone
      ? await watch.alone(worktree, go, trial.n)
      : await watch.watch(worktree, go, trial.n);
    const { execution, log, result, tampered } = watched.value;
    pending = undefined;
    if (watched.changed && !watched.changed.certain) {
      ledger.finishReplicate(replicateId, {
        outcome: "interrupted",
        reason: `files outside the worktrees changed while other programs ran too (${clip(watched.changed.files)}): it runs again alone to tell whose doing that was`,
        exitCode: execution.process.exitCode,
        signal: execution.process.signal,
        metric: null,
        metrics: {},
        logBytes: execution.process.logBytes,
        logTail: logTail(log),
        durationMs: execution.process.durationMs,
      });
      const files = watched.changed.files;
      ledger.event(run.id, trial.id, "suspect", { step: "replicate", files });
      if (!ctx.signal.aborted)
        ctx.emit({ type: "notice", text: suspectNotice(trial.n, "replicate", files) });
      if (fixed !== undefined) seeds?.unshift(fixed);
      alone = true;
      continue;
    }
    if (alone && !watched.changed && !ctx.signal.aborted) {
      ctx.emit({ type: "notice", text: clearedNotice(trial.n, "replicate") });
      alone = false;
    }
    ledger.finishReplicate(replicateId, {
      outcome: result.outcome,
      reason: result.reason,
      exitCode: execution.process.exitCode,
      signal: execution.process.signal,
      metric: result.metric,
      metrics: result.metrics,
      logBytes: execution.process.logBytes,
      logTail: logTail(log),
      durationMs: execution.process.durationMs,
      ...(execution.process.endedAt ? { endedAt: execution.process.endedAt } : {}),
    });
    ctx.emit({
      type: "replicate-end",
      n: trial.n,
      idx,
      slot: execution.slot.id,
      outcome: result.outcome,
      metric: result.metric,
    });
    const escaped = watched.changed?.files ?? [];
    // Before anything else writes in the trial's folder (metrics.json, the next replicate's log).
    const planted = plantedInFolder(dir, tampered);
    if (escaped.length)
      return {
        kind: "verdict",
        verdict: "tampered",
        reason: `the replicate changed files outside its worktree: ${clip(escaped)}${planted ? `; ${planted}` : ""}`,
        metric: null,
      };
    if (planted) return { kind: "verdict", verdict: "tampered", reason: planted, metric: null };
    const changedProtected = tamperedFiles(worktree, expected);
    if (changedProtected.length)
      return {
        kind: "verdict",
        verdict: "tampered",
        reason: `the replicate changed protected files: ${changedProtected.join(", ")}`,
        metric: null,
      };
    const undeclared = undeclaredChanges(ctx, worktree, files);
    if (undeclared.length)
      return {
        kind: "verdict",
        verdict: "tampered",
        reason: `the replicate changed files outside the editable files and declared outputs: ${clip(undeclared)}; if the program writes them on purpose (checkpoints, logs), declare them in ${TASK_FILE}: outputs: ${JSON.stringify(outputGlobs(undeclared))}`,
        metric: null,
      };
    done.push({ seed, result });
  }
}

/**
 * Why the trial is tampered through its own folder, or null: the replicate put a link or
 * a special file where the harness reads (`tampered`, from its log or result file) or
 * anywhere else in the folder, where the harness would later write (metrics.json through
 * its temporary file, the next replicate's log) or others read (diff.patch, by the report
 * and researchers). Each such entry is removed here, unread.
 */
export function plantedInFolder(dir: string, tampered: string | null): string | null {
  const moved = replacedFolder(dir);
  if (moved) return tampered ? `${tampered}; ${moved}` : moved;
  const others = removePlanted(dir, isTrialFile).map(describePlanted);
  if (tampered) return others.length ? `${tampered}; it also left ${clip(others)}` : tampered;
  if (!others.length) return null;
  return `the replicate put links or special files in the trial's folder: ${clip(others)}; they were removed without being followed or read`;
}

/** Globs that would declare these paths: a file's top folder, or the file itself at the top. */
function outputGlobs(changed: string[]): string[] {
  return [...new Set(changed.map((p) => (p.includes("/") ? `${p.split("/")[0]}/**` : p)))];
}

/**
 * Why the trial's folder is not the one the harness made (a replicate without the
 * sandbox moved it away or put a link in its place), or null. Nothing is read or removed
 * through such a link: it goes, and an empty folder takes its place for what follows.
 */
function replacedFolder(dir: string): string | null {
  const entry = lstatSync(dir, { throwIfNoEntry: false });
  if (entry?.isDirectory()) return null;
  const was = entry?.isSymbolicLink()
    ? `a link to ${readlinkSync(dir)}`
    : entry
      ? "a file"
      : "nothing";
  if (entry) removeEntry(dir);
  mkdirSync(dir, { recursive: true });
  return `the replicate replaced its trial's folder with ${was}; nothing was read or removed through it`;
}

function clip(paths: string[]): string {
  return paths.length > 10
    ? `${paths.slice(0, 10).join(", ")} and ${paths.length - 10} more`
    : paths.join(", ");
}
