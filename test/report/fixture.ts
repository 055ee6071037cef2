import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ledger } from "../../src/ledger/ledger.js";
import type { RunRow, TrialRow, Verdict } from "../../src/ledger/types.js";
import { paths } from "../../src/workspace/layout.js";

/**
 * Builds real ledgers for report and dashboard tests (and the dashboard benchmark)
 * through the Ledger's own API, as the orchestrator writes them. No vitest imports here:
 * the benchmark uses this file too.
 */

export interface FixtureTrial {
  title: string;
  verdict: Verdict;
  metric: number | null;
  hypothesis?: string;
  researcher?: string;
  slot?: string;
  /** Written as the trial's diff.patch. */
  diff?: string;
  logTail?: string;
  durationMs?: number;
}

export interface FixtureRun {
  tag?: string;
  metric?: string;
  goal?: "minimize" | "maximize";
  /** resources.gpus in the recorded task. */
  gpus?: number;
}

const COMMIT = (n: number) => `${n.toString(16).padStart(8, "0")}${"c".repeat(32)}`;

export function createFixtureRun(ledger: Ledger, options: FixtureRun = {}): RunRow {
  const tag = options.tag ?? "nov27";
  return ledger.createRun({
    tag,
    taskName: "fixture",
    taskJson: JSON.stringify({ name: "fixture", resources: { gpus: options.gpus ?? 0 } }),
    metric: options.metric ?? "val_bpb",
    goal: options.goal ?? "minimize",
    baseCommit: COMMIT(0),
    branch: `autoresearch/${tag}`,
    researcher: "mutate",
    judge: "greedy",
    seed: 42,
    maxTrials: null,
  });
}

/** Appends one finished trial (the first of a run is its baseline), as the orchestrator would. */
export function addTrial(ledger: Ledger, root: string, run: RunRow, t: FixtureTrial): TrialRow {
  const n = ledger.nextTrialNumber(run.id);
  const incumbent = ledger.incumbent(run.id);
  const trial = ledger.createTrial({
    runId: run.id,
    n,
    baseline: n === 0,
    parentCommit: incumbent?.commit ?? COMMIT(0),
    researcher: n === 0 ? "baseline" : (t.researcher ?? "mutate"),
  });
  ledger.setTrialProposal(trial.id, {
    title: t.title,
    hypothesis: t.hypothesis ?? null,
    proposeMs: 10,
  });
  ledger.setTrialCommit(trial.id, {
    commit: n === 0 ? COMMIT(0) : COMMIT(n),
    commitMs: 5,
    linesAdded: 1,
    linesRemoved: 1,
  });
  const dir = paths.trial(root, run.tag, n);
  if (t.diff !== undefined) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "diff.patch"), t.diff);
  }
  ledger.setTrialState(trial.id, "running");
  const replicate = ledger.startReplicate({
    trialId: trial.id,
    idx: 0,
    seed: 42,
    slot: t.slot ?? "cpu0",
    logPath: join(dir, "run.log"),
  });
  ledger.finishReplicate(replicate, {
    outcome: t.metric === null ? "crash" : "ok",
    reason: t.metric === null ? "exit code 1" : null,
    exitCode: t.metric === null ? 1 : 0,
    signal: null,
    metric: t.metric,
    metrics: t.metric === null ? {} : { [run.metric]: t.metric, steps: 10 },
    logBytes: 100,
    logTail: t.logTail ?? "training...\n---\n",
    durationMs: t.durationMs ?? 5000,
  });
  ledger.finishTrial(trial.id, {
    verdict: t.verdict,
    reason: t.verdict === "keep" || t.verdict === "discard" ? null : "exit code 1",
    metric: t.metric,
    incumbentMetric: n === 0 ? null : (incumbent?.metric ?? null),
    metrics: t.metric === null ? {} : { [run.metric]: t.metric, steps: 10 },
    runMs: t.durationMs ?? 5000,
  });
  return ledger.trialById(trial.id)!;
}

/** A small history: a baseline, improvements, discards and a crash. */
export const HISTORY: FixtureTrial[] = [
  { title: "baseline", verdict: "keep", metric: 1.0 },
  {
    title: "raise the learning rate",
    verdict: "keep",
    metric: 0.9,
    hypothesis: "training is too slow",
    diff: "diff --git a/train.py b/train.py\n--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-LR = 0.01\n+LR = 0.02\n",
  },
  { title: "wider model", verdict: "discard", metric: 0.95, slot: "cpu1" },
  { title: "deeper model", verdict: "crash", metric: null, slot: "cpu1" },
  { title: "a wild idea", verdict: "discard", metric: 7.5 },
  {
    title: "cosine schedule",
    verdict: "keep",
    metric: 0.85,
    diff: "diff --git a/train.py b/train.py\n--- a/train.py\n+++ b/train.py\n@@ -2 +2 @@\n-SCHEDULE = None\n+SCHEDULE = 'cosine'\n",
  },
];

/** A ledger in `root` holding one finished run with `trials`. */
export function fixtureLedger(
  root: string,
  trials: FixtureTrial[] = HISTORY,
  options: FixtureRun = {},
): { ledger: Ledger; run: RunRow } {
  const ledger = Ledger.open(root);
  const run = createFixtureRun(ledger, options);
  for (const t of trials) addTrial(ledger, root, run, t);
  ledger.setRunStatus(run.id, "finished", "reached --max-trials");
  return { ledger, run: ledger.runById(run.id)! };
}
