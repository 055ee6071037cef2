import type { Ledger } from "./ledger.js";

/** How a run's kept changes carried over to a larger stage, as `promote` measured it. */
export interface TransferRow {
  /** The trial that kept it (on `host` when another host's); null for a commit no trial made. */
  n: number | null;
  /** In a swarm, the host that kept it when not this run: with the run's tag, `n` is unique. */
  host?: string;
  run?: string;
  /** Absent in tables made before it was recorded. */
  commit?: string;
  title: string;
  /** Improvement over its parent where it was found (positive is better). */
  found: number | null;
  /** Improvement it brings at the stage: the incumbent against the incumbent without it. */
  atStage: number | null;
  /** Null when the change could not be taken out on its own, or its evaluation gave no value. */
  transfers: boolean | null;
  /** False when later changes depend on it, so it could not be taken out on its own; absent in older tables. */
  isolable?: boolean;
}

/** A change as tables name it: `#4`, `#4 of gpu-b/p1` (another run's, on its host), or its commit. */
export function changeName(row: Pick<TransferRow, "n" | "host" | "run" | "commit">): string {
  if (row.n === null) return row.commit?.slice(0, 12) ?? "?";
  if (!row.host) return `#${row.n}`;
  return `#${row.n} of ${row.host}${row.run ? `/${row.run}` : ""}`;
}

export interface TransferTable {
  metric: string;
  stage: string;
  seeds: number;
  baseline: number | null;
  incumbent: number | null;
  /** The stacked improvement at the stage: baseline against incumbent. */
  stacked: number | null;
  /** The single improvements added up. */
  sum: number | null;
  /** The stacked improvement equals the sum of single ones, within noise. */
  additive: boolean | null;
  /**
   * How additivity was decided: |stacked − sum| against `tolerance` (two standard errors
   * of that difference), from the spread of one evaluation and where that came from.
   * Absent in tables made before it was recorded.
   */
  test?: { spread: number | null; from: string; tolerance: number | null };
  rows: TransferRow[];
}

export interface PromotionRow {
  id: number;
  runId: number;
  stage: string;
  incumbentN: number;
  incumbentCommit: string;
  seeds: number;
  state: "running" | "done" | "failed";
  reason: string | null;
  table: unknown;
  createdAt: number;
  finishedAt: number | null;
}

export interface EvaluationRow {
  id: number;
  promotionId: number;
  label: string;
  ablatedN: number | null;
  commit: string | null;
  seed: number;
  outcome: string | null;
  reason: string | null;
  metric: number | null;
  logPath: string | null;
}

const PROMOTION = `id, run_id AS runId, stage, incumbent_n AS incumbentN, incumbent_commit AS incumbentCommit,
  seeds, state, reason, table_json AS 'table', created_at AS createdAt, finished_at AS finishedAt`;

/** The records of promotions to a larger stage and of the evaluations they ran. */
export const promotions = {
  create(
    ledger: Ledger,
    p: { runId: number; stage: string; incumbentN: number; incumbentCommit: string; seeds: number },
  ): number {
    const { lastInsertRowid } = ledger
      .sql(
        `INSERT INTO promotions (run_id, stage, incumbent_n, incumbent_commit, seeds, state, created_at)
         VALUES (?, ?, ?, ?, ?, 'running', ?)`,
      )
      .run(p.runId, p.stage, p.incumbentN, p.incumbentCommit, p.seeds, Date.now());
    return Number(lastInsertRowid);
  },

  finish(
    ledger: Ledger,
    id: number,
    state: "done" | "failed",
    reason: string | null,
    table: unknown,
  ): void {
    ledger
      .sql(
        "UPDATE promotions SET state = ?, reason = ?, table_json = ?, finished_at = ? WHERE id = ?",
      )
      .run(state, reason, table === null ? null : JSON.stringify(table), Date.now(), id);
  },

  list(ledger: Ledger, runId: number): PromotionRow[] {
    const rows = ledger
      .sql(`SELECT ${PROMOTION} FROM promotions WHERE run_id = ? ORDER BY id`)
      .all(runId) as (Omit<PromotionRow, "table"> & { table: string | null })[];
    return rows.map((r) => ({ ...r, table: r.table ? JSON.parse(r.table) : null }));
  },

  startEvaluation(
    ledger: Ledger,
    e: {
      promotionId: number;
      label: string;
      ablatedN: number | null;
      commit: string;
      seed: number;
      logPath: string;
    },
  ): number {
    const { lastInsertRowid } = ledger
      .sql(
        `INSERT INTO evaluations (promotion_id, label, ablated_n, commit_sha, seed, log_path, started_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(e.promotionId, e.label, e.ablatedN, e.commit, e.seed, e.logPath, Date.now());
    return Number(lastInsertRowid);
  },

  /** When the evaluation really started, after waiting for a slot (GPU time counts from here). */
  evaluationRunning(ledger: Ledger, id: number, at: number): void {
    ledger.sql("UPDATE evaluations SET started_at = ? WHERE id = ?").run(at, id);
  },

  finishEvaluation(
    ledger: Ledger,
    id: number,
    r: {
      outcome: string;
      reason: string | null;
      metric: number | null;
      metrics: Record<string, number>;
    },
  ): void {
    ledger
      .sql(
        "UPDATE evaluations SET outcome = ?, reason = ?, metric = ?, metrics_json = ?, finished_at = ? WHERE id = ?",
      )
      .run(r.outcome, r.reason, r.metric, JSON.stringify(r.metrics), Date.now(), id);
  },

  evaluations(ledger: Ledger, promotionId: number): EvaluationRow[] {
    return ledger
      .sql(
        `SELECT id, promotion_id AS promotionId, label, ablated_n AS ablatedN, commit_sha AS 'commit', seed, outcome,
           reason, metric, log_path AS logPath FROM evaluations WHERE promotion_id = ? ORDER BY id`,
      )
      .all(promotionId) as EvaluationRow[];
  },
};
