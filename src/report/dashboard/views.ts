import type { Db } from "../../ledger/db.js";
import type { Ledger } from "../../ledger/ledger.js";
import { ADOPTER, type RunRow, type TrialState, type Verdict } from "../../ledger/types.js";
import { isAlive } from "../../util/proc.js";

/** A trial as the dashboard's table shows it. */
export interface TrialView {
  id: number;
  n: number;
  baseline: boolean;
  state: TrialState;
  verdict: Verdict | null;
  title: string | null;
  researcher: string;
  metric: number | null;
  parentMetric: number | null;
  slot: string | null;
  runMs: number | null;
  createdAt: number;
  finishedAt: number | null;
}

/** A run's headline numbers, cheap enough to send with every update. */
export interface RunView {
  tag: string;
  task: string;
  metric: string;
  goal: string;
  status: string;
  live: boolean;
  trials: number;
  experiments: number;
  kept: number;
  crashed: number;
  inFlight: number;
  baseline: number | null;
  best: number | null;
  bestTrial: number | null;
}

/**
 * Where a client's copy of the trial table stands: it has every trial up to id `after`,
 * and `open` lists the ones it saw unfinished. Asking from a cursor returns exactly the
 * rows that may have changed since, whatever the timing of the writer's commits.
 */
export interface Cursor {
  after: number;
  open: number[];
}

const TRIAL_VIEW = `SELECT t.id AS id, t.n AS n, t.baseline AS baseline, t.state AS state,
  t.verdict AS verdict, t.title AS title, t.researcher AS researcher, t.metric AS metric,
  t.incumbent_metric AS parentMetric, t.run_ms AS runMs, t.created_at AS createdAt,
  t.finished_at AS finishedAt,
  (SELECT r.slot FROM replicates r WHERE r.trial_id = t.id ORDER BY r.idx DESC LIMIT 1) AS slot
  FROM trials t WHERE t.run_id = ?`;

type RawView = Omit<TrialView, "baseline"> & { baseline: number };

/** Trials of a run (all, or those that may have changed since `cursor`), and the next cursor. */
export function trialViews(
  db: Db,
  runId: number,
  cursor: Cursor | null,
): { trials: TrialView[]; cursor: Cursor } {
  const raw = (
    cursor
      ? db
          .prepare(
            `${TRIAL_VIEW} AND (t.id > ? OR t.state != 'done' OR t.id IN (SELECT value FROM json_each(?))) ORDER BY t.n`,
          )
          .all(runId, cursor.after, JSON.stringify(cursor.open))
      : db.prepare(`${TRIAL_VIEW} ORDER BY t.n`).all(runId)
  ) as RawView[];
  const trials = raw.map((r) => ({ ...r, baseline: r.baseline === 1 }));
  let after = cursor?.after ?? 0;
  for (const t of trials) after = Math.max(after, t.id);
  const open = trials.filter((t) => t.state !== "done").map((t) => t.id);
  return { trials, cursor: { after, open } };
}

/** The newest `count` trials of a run, in trial order: what the first screen of the table shows. */
export function newestTrials(db: Db, runId: number, count: number): TrialView[] {
  const raw = db.prepare(`${TRIAL_VIEW} ORDER BY t.n DESC LIMIT ?`).all(runId, count) as RawView[];
  return raw.reverse().map((r) => ({ ...r, baseline: r.baseline === 1 }));
}

/** The columns of a packed trial table; rows list values in this order. */
export const TABLE_COLUMNS = [
  "n",
  "baseline",
  "state",
  "verdict",
  "title",
  "researcher",
  "metric",
  "parentMetric",
  "slot",
  "runMs",
  "finishedAt",
] as const;

/**
 * What the run page's script receives, first in full and then as updates: trials as
 * rows of values under one list of column names (half the bytes of one object per
 * trial at 10,000 trials), the run's numbers, and the cursor to continue from (none for
 * a part of the table).
 */
export function tablePayload(trials: TrialView[], summary: RunView, cursor: Cursor | null): string {
  const rows = trials.map((t) => TABLE_COLUMNS.map((c) => t[c]));
  return JSON.stringify({ table: { columns: TABLE_COLUMNS, rows }, summary, cursor });
}

/** The headline numbers of a run. */
export function runView(ledger: Ledger, run: RunRow): RunView {
  // Another host's keep adopted in a swarm is not this run's experiment, as in the report.
  const counts = ledger.db
    .prepare(
      `SELECT COUNT(*) AS trials,
         COALESCE(SUM(state = 'done' AND baseline = 0 AND researcher != @adopter AND verdict != 'interrupted'), 0) AS experiments,
         COALESCE(SUM(state = 'done' AND baseline = 0 AND researcher != @adopter AND verdict = 'keep'), 0) AS kept,
         COALESCE(SUM(state = 'done' AND baseline = 0 AND researcher != @adopter AND verdict IN ('crash', 'timeout')), 0) AS crashed,
         COALESCE(SUM(state != 'done'), 0) AS inFlight,
         (SELECT metric FROM trials WHERE run_id = @run AND baseline = 1 AND verdict = 'keep') AS baseline
       FROM trials WHERE run_id = @run`,
    )
    .get({ run: run.id, adopter: ADOPTER }) as Omit<
    RunView,
    "tag" | "task" | "metric" | "goal" | "status" | "live" | "best" | "bestTrial"
  >;
  const best = run.incumbentId === null ? null : ledger.trialById(run.incumbentId);
  return {
    tag: run.tag,
    task: run.taskName,
    metric: run.metric,
    goal: run.goal,
    status: run.status,
    live: run.ownerPid !== null && isAlive(run.ownerPid, run.ownerStart),
    ...counts,
    best: best?.metric ?? null,
    bestTrial: best?.n ?? null,
  };
}
