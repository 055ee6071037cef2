import type { Ledger } from "../../ledger/ledger.js";
import { runSessions, timeWithin } from "../../ledger/sessions.js";
import {
  ADOPTER,
  importedFrom,
  type NoiseFloor,
  type RunRow,
  type TrialRow,
} from "../../ledger/types.js";
import { isAlive } from "../../util/proc.js";
import { paths } from "../../workspace/layout.js";

export interface InFlight {
  n: number;
  title: string | null;
  slot: string | null;
  /** The SLURM job, for cluster runs. */
  jobId: string | null;
  /** Queued on a cluster, or running. */
  state: "queued" | "running";
  /** Since when it runs (or waits in the queue). */
  since: number;
}

/** How long each slot ran replicates in this run. */
export interface SlotBusy {
  slot: string;
  replicates: number;
  busyMs: number;
}

export interface RunSummary {
  run: RunRow;
  /** True if an orchestrator process is driving the run right now. */
  live: boolean;
  /** Trials with a result, the baseline included; interrupted ones are counted apart. */
  trials: number;
  kept: number;
  /** Crashed or timed out, the baseline included. */
  crashed: number;
  /** Proposals refused before they ran (bad edits, a researcher that failed). */
  invalid: number;
  tampered: number;
  /** Stopped before they finished; `resume` runs them again. */
  interrupted: number;
  /** Other hosts' keeps adopted in a swarm: measured here, kept by their hosts. */
  adopted: number;
  baseline: number | null;
  best: TrialRow | null;
  keepRate: number | null;
  inFlight: InFlight[];
  /** The metric's spread over seeds of unchanged code, where measured. */
  noise: NoiseFloor | null;
  slots: SlotBusy[];
  /**
   * From the run's first replicate to its last end (or now, while running), counting only
   * the time its sessions ran: not the time between a stop and a resume.
   */
  spanMs: number;
  resultsFile: string;
  /** The results.tsv an `import` recorded this run from: it has no branch or results of its own. */
  importedFrom: string | null;
}

/** The facts `status` and the end of `run` print: counts, baseline, best, what is running. */
export function summarize(root: string, ledger: Ledger, run: RunRow): RunSummary {
  const trials = ledger.trials(run.id);
  const done = trials.filter((t) => t.state === "done");
  // Another host's keep adopted in a swarm is that host's keep (counted there), measured
  // here: not this run's experiment, as in the report.
  const adopted = done.filter((t) => t.researcher === ADOPTER && t.verdict !== "interrupted");
  const experiments = done.filter(
    (t) => !t.baseline && t.verdict !== "interrupted" && t.researcher !== ADOPTER,
  );
  const kept = experiments.filter((t) => t.verdict === "keep").length;
  // An adoption that fails here is counted among the adoptions, not as this run's failure.
  const count = (...verdicts: string[]) =>
    done.filter(
      (t) => t.researcher !== ADOPTER && t.verdict !== null && verdicts.includes(t.verdict),
    ).length;
  const baseline = done.find((t) => t.baseline && t.verdict === "keep")?.metric ?? null;
  const inFlight = ledger.runningReplicates(run.id).map((r): InFlight => {
    const trial = trials.find((t) => t.id === r.trialId);
    return {
      n: trial?.n ?? -1,
      title: trial?.title ?? null,
      slot: r.slot,
      jobId: r.jobId,
      state: r.runningAt ? "running" : "queued",
      since: r.runningAt ?? r.startedAt,
    };
  });
  const busy = new Map<string, SlotBusy>();
  const now = Date.now();
  // Busy only within the sessions: a replicate that a resume ended may be recorded as
  // ending after the gap, in which no one watched it.
  const sessions = runSessions(ledger.db, run.id, now);
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (const t of trials)
    for (const r of ledger.replicates(t.id)) {
      if (!r.slot || !r.runningAt) continue;
      const end = r.finishedAt ?? now;
      const entry = busy.get(r.slot) ?? { slot: r.slot, replicates: 0, busyMs: 0 };
      entry.replicates++;
      entry.busyMs += timeWithin(sessions, r.runningAt, end);
      busy.set(r.slot, entry);
      first = Math.min(first, r.runningAt);
      last = Math.max(last, end);
    }
  return {
    run,
    live: run.ownerPid !== null && isAlive(run.ownerPid, run.ownerStart),
    trials: trials.filter((t) => t.verdict !== "interrupted").length,
    kept,
    crashed: count("crash", "timeout"),
    invalid: count("invalid"),
    tampered: count("tampered"),
    interrupted: done.filter((t) => t.verdict === "interrupted").length,
    adopted: adopted.length,
    baseline,
    best: ledger.incumbent(run.id),
    keepRate: experiments.length ? kept / experiments.length : null,
    inFlight,
    noise: run.noiseJson ? (JSON.parse(run.noiseJson) as NoiseFloor) : null,
    slots: [...busy.values()].sort((a, b) =>
      a.slot.localeCompare(b.slot, undefined, { numeric: true }),
    ),
    spanMs: last > first ? timeWithin(sessions, first, last) : 0,
    resultsFile: paths.results(root, run.tag),
    importedFrom: importedFrom(run),
  };
}
