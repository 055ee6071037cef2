import type { Ledger } from "../ledger/ledger.js";
import type { RunRow, TrialRow } from "../ledger/types.js";
import { isAlive } from "../util/proc.js";
import { paths } from "./paths.js";

export interface InFlight {
  n: number;
  title: string | null;
  slot: string | null;
  startedAt: number;
}

export interface RunSummary {
  run: RunRow;
  /** True if an orchestrator process is driving the run right now. */
  live: boolean;
  trials: number;
  kept: number;
  crashed: number;
  baseline: number | null;
  best: TrialRow | null;
  keepRate: number | null;
  inFlight: InFlight[];
  resultsFile: string;
}

/** The facts `status` and the end of `run` print: counts, baseline, best, what is running. */
export function summarize(root: string, ledger: Ledger, run: RunRow): RunSummary {
  const trials = ledger.trials(run.id);
  const done = trials.filter((t) => t.state === "done");
  const experiments = done.filter((t) => !t.baseline && t.verdict !== "interrupted");
  const kept = experiments.filter((t) => t.verdict === "keep").length;
  const crashed = experiments.filter(
    (t) => t.verdict === "crash" || t.verdict === "timeout",
  ).length;
  const baseline = done.find((t) => t.baseline && t.verdict === "keep")?.metric ?? null;
  const inFlight = ledger.runningReplicates(run.id).map((r) => {
    const trial = trials.find((t) => t.id === r.trialId);
    return { n: trial?.n ?? -1, title: trial?.title ?? null, slot: r.slot, startedAt: r.startedAt };
  });
  return {
    run,
    live: run.ownerPid !== null && isAlive(run.ownerPid, run.ownerStart),
    trials: trials.length,
    kept,
    crashed,
    baseline,
    best: ledger.incumbent(run.id),
    keepRate: experiments.length ? kept / experiments.length : null,
    inFlight,
    resultsFile: paths.results(root, run.tag),
  };
}
