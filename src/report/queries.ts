import type { Db } from "../ledger/db.js";
import type { Verdict } from "../ledger/types.js";
import type { Outcome } from "../metrics/outcome.js";

/**
 * Read-only queries that readers (report, dashboard) need across a whole run at once.
 * The Ledger's own methods go trial by trial; at 10,000 trials one query is much cheaper.
 */

/** One replicate on its slot: a bar of the slot timeline. */
export interface SlotSpan {
  slot: string;
  n: number;
  idx: number;
  startedAt: number;
  finishedAt: number | null;
  durationMs: number | null;
  outcome: Outcome | null;
  verdict: Verdict | null;
}

/**
 * Every replicate of a run that ran on a slot, in start order. Where the ledger records
 * when a queued job really started (SLURM), the bar starts there, not at submission.
 */
export function slotSpans(db: Db, runId: number): SlotSpan[] {
  const running = hasColumn(db, "replicates", "running_at");
  const start = running ? "COALESCE(r.running_at, r.started_at)" : "r.started_at";
  // One that never ran (a queued job cancelled, a replicate that waited for its turn beside
  // another and was stopped) held no slot; ledgers from before running_at keep their rows.
  const ran = running ? "AND NOT (r.running_at IS NULL AND COALESCE(r.duration_ms, 0) = 0)" : "";
  return db
    .prepare(
      `SELECT r.slot AS slot, t.n AS n, r.idx AS idx, ${start} AS startedAt,
         r.finished_at AS finishedAt, r.duration_ms AS durationMs, r.outcome AS outcome,
         t.verdict AS verdict
       FROM replicates r JOIN trials t ON t.id = r.trial_id
       WHERE t.run_id = ? AND r.slot IS NOT NULL ${ran}
       ORDER BY startedAt, r.id`,
    )
    .all(runId) as SlotSpan[];
}

/**
 * Replicate time a run has used, in milliseconds, and GPU time: each replicate's duration
 * times its GPUs — those the ledger recorded for it (a list such as "0,1"), else
 * `defaultGpus` (the task's `resources.gpus`).
 */
export function replicateTime(
  db: Db,
  runId: number,
  defaultGpus: number,
): { ms: number; gpuMs: number } {
  const gpus = hasColumn(db, "replicates", "gpus") ? "r.gpus" : "NULL";
  const rows = db
    .prepare(
      `SELECT r.duration_ms AS ms, ${gpus} AS gpus FROM replicates r
       JOIN trials t ON t.id = r.trial_id WHERE t.run_id = ? AND r.duration_ms IS NOT NULL`,
    )
    .all(runId) as { ms: number; gpus: string | null }[];
  let ms = 0;
  let gpuMs = 0;
  for (const r of rows) {
    ms += r.ms;
    gpuMs += r.ms * (r.gpus ? r.gpus.split(",").filter(Boolean).length : defaultGpus);
  }
  return { ms, gpuMs };
}

function hasColumn(db: Db, table: string, column: string): boolean {
  return db
    .prepare("SELECT 1 FROM pragma_table_info(?) WHERE name = ?")
    .all(table, column)
    .some(() => true);
}

/**
 * What the run's proposals cost in US dollars, or null where the ledger does not record
 * costs (older schemas) or no proposal reported one.
 */
export function proposalCostUsd(db: Db, runId: number): number | null {
  if (!hasColumn(db, "proposals", "cost_usd")) return null;
  const row = db
    .prepare(
      `SELECT SUM(p.cost_usd) AS usd, COUNT(p.cost_usd) AS known FROM proposals p
       JOIN trials t ON t.id = p.trial_id WHERE t.run_id = ?`,
    )
    .get(runId) as { usd: number | null; known: number };
  return row.known > 0 ? row.usd : null;
}

/** The slot each trial ran on last, by trial id: the dashboard's slot column and filter. */
export function trialSlots(db: Db, runId: number): Map<number, string> {
  const rows = db
    .prepare(
      `SELECT r.trial_id AS id, r.slot AS slot FROM replicates r JOIN trials t ON t.id = r.trial_id
       WHERE t.run_id = ? AND r.slot IS NOT NULL ORDER BY r.idx`,
    )
    .all(runId) as { id: number; slot: string }[];
  return new Map(rows.map((r) => [r.id, r.slot]));
}
