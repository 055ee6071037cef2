import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { JudgeStep } from "../judge/judge.js";
import type { TrialRow, Verdict } from "../ledger/types.js";
import { type Classified, classify, logTail } from "../metrics/outcome.js";
import { writeJson } from "../util/fs.js";
import { processStartTime } from "../util/proc.js";
import { protectedFingerprint, tamperedFiles } from "../workspace/protect.js";
import { branchRef, setRef, trialRef } from "../workspace/repo.js";
import { addWorktree, commitWorktree, diffCommits, removeWorktree } from "../workspace/worktree.js";
import type { RunContext } from "./context.js";
import { replicateEnv } from "./env.js";
import { paths, replicateLog, replicateResult } from "./paths.js";
import { writeResults } from "./results.js";
import { ensureSetup } from "./setup.js";

type Verdicted = Extract<JudgeStep, { kind: "verdict" }>;

export interface TrialOutcome {
  trial: TrialRow;
  /** Set when the run cannot go on (a researcher that cannot work, a failed baseline). */
  fatal: string | null;
}

/**
 * One trial, end to end: a worktree at the incumbent, a proposal, a commit kept under
 * the trial's ref, replicates until the judge decides, the verdict recorded, and the
 * branch advanced on a keep. The first trial of a run is the baseline: the unchanged code.
 */
export async function runTrial(ctx: RunContext, n: number): Promise<TrialOutcome> {
  const { ledger, run, task } = ctx;
  const incumbent = ledger.incumbent(run.id);
  const baseline = incumbent === null;
  const parent = incumbent?.commit ?? run.baseCommit;
  let trial = ledger.createTrial({
    runId: run.id,
    n,
    baseline,
    parentCommit: parent,
    researcher: baseline ? "baseline" : ctx.researcher.name,
  });
  ctx.emit({ type: "trial-start", n, baseline });
  const dir = paths.trial(task.root, run.tag, n);
  mkdirSync(dir, { recursive: true });
  const worktree = paths.worktree(task.root, run.tag, n);
  try {
    await addWorktree(task.root, worktree, parent);
    const prepared = baseline
      ? await prepareBaseline(ctx, trial, parent)
      : await prepareProposal(ctx, trial, worktree, dir, incumbent!.metric);
    if ("verdict" in prepared) {
      trial = finish(
        ctx,
        trial,
        { kind: "verdict", verdict: prepared.verdict, reason: prepared.reason, metric: null },
        [],
        0,
      );
      return { trial, fatal: prepared.fatal ? prepared.reason : null };
    }
    ledger.setTrialState(trial.id, "running");
    const started = Date.now();
    const step = await runReplicates(ctx, trial, worktree, dir, prepared.commit);
    const replicates = ledger.replicates(trial.id);
    trial = finish(
      ctx,
      trial,
      step,
      replicates.map((r) => r.metrics),
      Date.now() - started,
    );
    if (trial.verdict === "keep")
      await setRef(task.root, branchRef(run.tag), prepared.commit, parent);
    const fatal =
      baseline && trial.verdict !== "keep" && trial.verdict !== "interrupted"
        ? `the baseline (the unchanged code) gave no usable result: ${trial.verdict}, ${trial.reason}. Fix the task, commit, and run again; the log is ${join(dir, "run.log")}`
        : null;
    return { trial, fatal };
  } catch (error) {
    // A harness failure (git, disk, setup) must not leave the trial looking in flight.
    if (ledger.trialById(trial.id)?.state !== "done")
      finish(
        ctx,
        trial,
        {
          kind: "verdict",
          verdict: "interrupted",
          reason: `stopped by an error of the harness: ${(error as Error).message}`,
          metric: null,
        },
        [],
        0,
      );
    throw error;
  } finally {
    await removeWorktree(task.root, worktree).catch(() => undefined);
  }
}

type Prepared = { commit: string } | { verdict: Verdict; reason: string; fatal: boolean };

async function prepareBaseline(
  ctx: RunContext,
  trial: TrialRow,
  commit: string,
): Promise<Prepared> {
  ctx.ledger.setTrialProposal(trial.id, {
    title: "baseline",
    hypothesis: "the unchanged code",
    proposeMs: 0,
  });
  ctx.ledger.setTrialCommit(trial.id, { commit, commitMs: 0, linesAdded: 0, linesRemoved: 0 });
  await setRef(ctx.task.root, trialRef(ctx.run.tag, trial.n), commit);
  return { commit };
}

async function prepareProposal(
  ctx: RunContext,
  trial: TrialRow,
  worktree: string,
  dir: string,
  parentMetric: number | null,
): Promise<Prepared> {
  const { ledger, run, task } = ctx;
  const started = Date.now();
  const result = await ctx.researcher.propose({
    task,
    tag: run.tag,
    trial: trial.n,
    worktree,
    parent: { commit: trial.parentCommit, metric: parentMetric },
    history: ledger.trials(run.id).filter((t) => t.state === "done"),
    seed: run.seed,
    signal: ctx.signal,
  });
  const proposeMs = Date.now() - started;
  ledger.recordProposal(trial.id, {
    researcher: ctx.researcher.name,
    title: result.ok ? result.title : null,
    hypothesis: result.ok ? result.hypothesis : null,
    detail: result.detail,
    error: result.ok ? null : result.reason,
    durationMs: proposeMs,
  });
  writeJson(join(dir, "proposal.json"), {
    researcher: ctx.researcher.name,
    ...result,
    seconds: proposeMs / 1000,
  });
  if (!result.ok) {
    const verdict = ctx.signal.aborted ? "interrupted" : "invalid";
    return { verdict, reason: result.reason, fatal: result.fatal === true };
  }
  ledger.setTrialProposal(trial.id, {
    title: result.title,
    hypothesis: result.hypothesis,
    proposeMs,
  });
  ctx.emit({ type: "proposal", n: trial.n, title: result.title });

  const commitStarted = Date.now();
  const message = `${result.title}\n\n${result.hypothesis}\n\nAutoresearch-Run: ${run.tag}\nAutoresearch-Trial: ${trial.n}\n`;
  const commit = await commitWorktree(worktree, trial.parentCommit, message);
  // The ref is set before anything can refuse the proposal: whatever the verdict, it is never lost.
  const [, diff] = await Promise.all([
    setRef(task.root, trialRef(run.tag, trial.n), commit),
    diffCommits(task.root, trial.parentCommit, commit),
  ]);
  writeFileSync(join(dir, "diff.patch"), diff.patch);
  ledger.setTrialCommit(trial.id, {
    commit,
    commitMs: Date.now() - commitStarted,
    linesAdded: diff.added,
    linesRemoved: diff.removed,
  });
  const scope = ctx.scope.check(diff.changes);
  if (!scope.ok) return { verdict: "invalid", reason: scope.reason, fatal: false };
  return { commit };
}

/** Runs replicates until the judge has a verdict; a tampering replicate ends the trial at once. */
async function runReplicates(
  ctx: RunContext,
  trial: TrialRow,
  worktree: string,
  dir: string,
  commit: string,
): Promise<Verdicted> {
  const { ledger, run, task } = ctx;
  const expected = await protectedFingerprint(task.root, commit, task.protected);
  mkdirSync(paths.cache(task.root), { recursive: true });
  const incumbent = ledger.incumbent(run.id);
  const done: Classified[] = [];
  for (;;) {
    const step = ctx.judge.next(
      {
        goal: task.metric.goal,
        metricName: task.metric.name,
        minEffect: task.judge.minEffect,
        baseline: trial.baseline,
        incumbentMetric: incumbent?.metric ?? null,
        seed: run.seed,
      },
      done,
    );
    if (step.kind === "verdict") return step;
    const stopped: Verdicted = {
      kind: "verdict",
      verdict: "interrupted",
      reason: "stopped before it ran",
      metric: null,
    };
    if (ctx.signal.aborted || !(await ensureSetup(ctx, worktree, commit))) return stopped;

    const idx = done.length;
    const logPath = join(dir, replicateLog(idx));
    const resultPath = join(dir, replicateResult(idx));
    const replicateId = ledger.startReplicate({
      trialId: trial.id,
      idx,
      seed: step.seed,
      slot: null,
      logPath,
    });
    const title = ledger.trialById(trial.id)?.title ?? "";
    const execution = await ctx.executor.run({
      command: task.run,
      cwd: worktree,
      env: replicateEnv(task, run.tag, {
        trial: trial.n,
        idx,
        seed: step.seed,
        resultFile: resultPath,
      }),
      logPath,
      logLimit: task.logLimit,
      timeoutMs: task.timeout * 1000,
      killGraceMs: task.killGrace * 1000,
      signal: ctx.signal,
      onStart: (slot, pid) => {
        ledger.setReplicateProcess(replicateId, slot.id, pid, processStartTime(pid));
        ctx.emit({
          type: "replicate-start",
          n: trial.n,
          idx,
          slot: slot.id,
          title,
          budget: task.budget,
          startedAt: Date.now(),
        });
      },
    });
    const log = readFileSync(logPath, "utf8");
    const resultFile = existsSync(resultPath) ? readFileSync(resultPath, "utf8") : null;
    const classified = classify(execution.process, log, task, resultFile);
    ledger.finishReplicate(replicateId, {
      outcome: classified.outcome,
      reason: classified.reason,
      exitCode: execution.process.exitCode,
      signal: execution.process.signal,
      metric: classified.metric,
      metrics: classified.metrics,
      logBytes: execution.process.logBytes,
      logTail: logTail(log),
      durationMs: execution.process.durationMs,
    });
    ctx.emit({
      type: "replicate-end",
      n: trial.n,
      idx,
      slot: execution.slot.id,
      outcome: classified.outcome,
      metric: classified.metric,
    });
    const tampered = tamperedFiles(worktree, expected);
    if (tampered.length)
      return {
        kind: "verdict",
        verdict: "tampered",
        reason: `the replicate changed protected files: ${tampered.join(", ")}`,
        metric: null,
      };
    done.push(classified);
  }
}

/** Records the verdict, the trial's metrics file and results.tsv; returns the updated row. */
export function finish(
  ctx: RunContext,
  trial: TrialRow,
  step: Verdicted,
  replicateMetrics: Record<string, number>[],
  runMs: number,
): TrialRow {
  const { ledger, run, task } = ctx;
  const incumbent = ledger.incumbent(run.id);
  const metrics = replicateMetrics.at(-1) ?? {};
  ledger.finishTrial(trial.id, {
    verdict: step.verdict,
    reason: step.reason,
    metric: step.metric,
    incumbentMetric: trial.baseline ? null : (incumbent?.metric ?? null),
    metrics,
    runMs,
  });
  const done = ledger.trialById(trial.id)!;
  writeJson(join(paths.trial(task.root, run.tag, trial.n), "metrics.json"), {
    verdict: done.verdict,
    reason: done.reason,
    metric: done.metric,
    incumbent_metric: done.incumbentMetric,
    metrics,
    replicates: ledger.replicates(trial.id).map((r) => ({
      idx: r.idx,
      seed: r.seed,
      slot: r.slot,
      outcome: r.outcome,
      reason: r.reason,
      metric: r.metric,
      metrics: r.metrics,
      exit_code: r.exitCode,
      signal: r.signal,
      seconds: r.durationMs === null ? null : r.durationMs / 1000,
    })),
  });
  writeResults(task, ledger, run);
  const best = ledger.incumbent(run.id)?.metric ?? null;
  ctx.emit({
    type: "trial-end",
    n: trial.n,
    baseline: trial.baseline,
    title: done.title ?? "",
    verdict: step.verdict,
    metric: step.metric,
    reason: step.reason,
    best,
  });
  return done;
}
