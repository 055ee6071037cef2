import { join } from "node:path";
import { UsageError } from "../errors.js";
import type { Outcome } from "../metrics/outcome.js";
import { STATE_DIR } from "../workspace/layout.js";
import { integrityProblem } from "./check.js";
import { type Db, type OpenOptions, openDatabase, type Statement } from "./db.js";
import { MIGRATIONS } from "./migrations.js";
import { SESSION_END, SESSION_START } from "./sessions.js";
import type {
  Estimate,
  NoiseFloor,
  ProposalUsage,
  ReplicateRow,
  RunRow,
  RunStatus,
  TrialRow,
  TrialState,
  Verdict,
  VerifyResult,
} from "./types.js";

const RUN_COLUMNS = `id, tag, task_name AS taskName, task_json AS taskJson, metric, goal,
  base_commit AS baseCommit, branch, researcher, judge, seed, max_trials AS maxTrials, status,
  stop_reason AS stopReason, incumbent_id AS incumbentId, owner_pid AS ownerPid,
  owner_start AS ownerStart, created_at AS createdAt, updated_at AS updatedAt,
  researcher_json AS researcherJson, max_usd AS maxUsd, executor_json AS executorJson,
  noise_json AS noiseJson, stops_json AS stopsJson, sandbox`;

const TRIAL_COLUMNS = `id, run_id AS runId, n, baseline, parent_commit AS parentCommit,
  commit_sha AS 'commit', state, verdict, reason, title, hypothesis, researcher, metric,
  incumbent_metric AS incumbentMetric, metrics_json AS metrics, lines_added AS linesAdded,
  lines_removed AS linesRemoved, propose_ms AS proposeMs, commit_ms AS commitMs, run_ms AS runMs,
  created_at AS createdAt, finished_at AS finishedAt, rebase_of AS rebaseOf,
  estimate_json AS estimate, verify_metric AS verifyMetric, verify_json AS verify`;

const REPLICATE_COLUMNS = `id, trial_id AS trialId, idx, seed, slot, pid, pid_start AS pidStart,
  state, outcome, reason, exit_code AS exitCode, signal, metric, metrics_json AS metrics,
  log_path AS logPath, log_bytes AS logBytes, log_tail AS logTail, started_at AS startedAt,
  finished_at AS finishedAt, duration_ms AS durationMs, job_id AS jobId, gpus,
  running_at AS runningAt`;

type Raw<T> = Omit<T, "metrics" | "baseline" | "estimate" | "verify"> & {
  metrics: string | null;
  baseline?: number;
  estimate?: string | null;
  verify?: string | null;
};

function trialFrom(raw: Raw<TrialRow>): TrialRow {
  return {
    ...raw,
    baseline: raw.baseline === 1,
    metrics: raw.metrics ? JSON.parse(raw.metrics) : {},
    estimate: raw.estimate ? JSON.parse(raw.estimate) : null,
    verify: raw.verify ? JSON.parse(raw.verify) : null,
  };
}

/**
 * Whether a trial counts toward --max-trials: an interrupted one is run again, and a failed
 * baseline is followed by a new one once the task is fixed, so neither counts.
 */
function index(byParent: Map<string, Map<string, TrialRow>>, t: TrialRow): void {
  if (t.title === null) return;
  const titles = byParent.get(t.parentCommit) ?? new Map<string, TrialRow>();
  byParent.set(t.parentCommit, titles);
  titles.set(t.title, t);
}

/** Kept trials by commit: the latest of each. */
function indexKept(kept: Map<string, TrialRow>, t: TrialRow): void {
  if (t.verdict !== "keep" || t.commit === null) return;
  const known = kept.get(t.commit);
  if (!known || known.n <= t.n) kept.set(t.commit, t);
}

function countsTowardMax(t: TrialRow): boolean {
  return t.verdict !== "interrupted" && !(t.baseline && t.state === "done" && t.verdict !== "keep");
}

function replicateFrom(raw: Raw<ReplicateRow>): ReplicateRow {
  return { ...raw, metrics: raw.metrics ? JSON.parse(raw.metrics) : {} };
}

export interface NewRun {
  tag: string;
  taskName: string;
  taskJson: string;
  metric: string;
  goal: "minimize" | "maximize";
  baseCommit: string;
  branch: string;
  researcher: string;
  judge: string;
  seed: number;
  maxTrials: number | null;
  /** The researcher's settings (never keys), so that `resume` proposes the same way. */
  researcherJson?: string | null;
  maxUsd?: number | null;
  /** Where replicates run (local slots, or the cluster's settings), so that `resume` runs there too. */
  executorJson?: string | null;
  /** The --sandbox mode the run was started with; null: the task file's. */
  sandbox?: string | null;
}

export interface TrialResult {
  /** What the judge measured: the improvement over the parent, with its bounds. */
  estimate?: Estimate | null;
  verdict: Verdict;
  reason: string | null;
  metric: number | null;
  incumbentMetric: number | null;
  metrics: Record<string, number>;
  runMs: number | null;
}

export interface ReplicateResult {
  outcome: Outcome;
  reason: string | null;
  exitCode: number | null;
  signal: string | null;
  metric: number | null;
  metrics: Record<string, number>;
  logBytes: number | null;
  logTail: string | null;
  durationMs: number;
  /** When the process or job ended (default: now); a slot is busy until then. */
  endedAt?: number;
}

/** A run's trials as cached, with what is derived from them and kept in step. */
interface Cached {
  runId: number;
  version: number;
  rows: TrialRow[];
  counted: number;
  /** The finished trials, in order; null until asked for, or after a finished one changed. */
  finished: TrialRow[] | null;
  /** Finished trials by parent commit, then by title (the latest of each). */
  byParent: Map<string, Map<string, TrialRow>> | null;
  /** Kept trials by commit (the latest of each); null until asked for, or after a keep changed. */
  kept: Map<string, TrialRow> | null;
}

/**
 * The durable record of runs, trials, proposals, replicates and events.
 * Contract: every write is a single transaction; a kill between two calls leaves a
 * state that `resume` can recognise (a trial not `done`, a replicate still `running`).
 */
export class Ledger {
  /**
   * One run's trials as last read, kept in step with this connection's own writes (each
   * refreshes the row it wrote) and read anew whenever another connection has written
   * (SQLite's data_version). An orchestrator asks for a run's trials several times per
   * trial: without this, each ask reads and parses the whole run, so a trial's cost would
   * grow with the run's length.
   */
  private cached: Cached | null = null;

  /**
   * Statements by their SQL, compiled once. A statement holds native memory until it is
   * garbage-collected, which V8 does not count: compiled anew on every call, tens of
   * thousands of them piled up in a long run, and the larger process made every fork (each
   * git command, each replicate) slower.
   */
  private readonly statements = new Map<string, Statement>();

  constructor(readonly db: Db) {}

  /** A compiled statement of this ledger's database. */
  sql(text: string): Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  static pathFor(root: string): string {
    return join(root, STATE_DIR, "ledger.db");
  }

  /** The task's ledger, to write; `verify` for a command's first open (see `OpenOptions`). */
  static open(root: string, options: OpenOptions = {}): Ledger {
    return new Ledger(openDatabase(Ledger.pathFor(root), MIGRATIONS, options));
  }

  close(): void {
    this.db.close();
  }

  /**
   * The first index entry that disagrees with its table, or null: what `doctor`, which
   * opens a ledger with such an index (`indexesMended`), finds after rebuilding them.
   */
  indexProblem(): string | null {
    return integrityProblem(this.db);
  }

  /** Rebuilds every index from its table, which holds the records. */
  reindex(): void {
    this.db.exec("REINDEX");
  }

  // Runs

  createRun(run: NewRun): RunRow {
    const now = Date.now();
    const { lastInsertRowid } = this.sql(
      `INSERT INTO runs (tag, task_name, task_json, metric, goal, base_commit, branch, researcher,
           judge, seed, max_trials, researcher_json, max_usd, executor_json, sandbox, status, created_at,
           updated_at)
         VALUES (@tag, @taskName, @taskJson, @metric, @goal, @baseCommit, @branch, @researcher,
           @judge, @seed, @maxTrials, @researcherJson, @maxUsd, @executorJson, @sandbox, 'running',
           @now, @now)`,
    ).run({ researcherJson: null, maxUsd: null, executorJson: null, sandbox: null, ...run, now });
    return this.runById(Number(lastInsertRowid))!;
  }

  runById(id: number): RunRow | null {
    return (this.sql(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`).get(id) as RunRow) ?? null;
  }

  run(tag: string): RunRow | null {
    return (this.sql(`SELECT ${RUN_COLUMNS} FROM runs WHERE tag = ?`).get(tag) as RunRow) ?? null;
  }

  runs(): RunRow[] {
    return this.sql(`SELECT ${RUN_COLUMNS} FROM runs ORDER BY id`).all() as RunRow[];
  }

  /**
   * The run named `tag`, or the most recent one; a usage error names the runs there are.
   * `doing` says what the run was wanted for ("resume"), for the message when there is none.
   */
  pick(tag?: string, doing = "look at"): RunRow {
    const run = tag ? this.run(tag) : (this.runs().at(-1) ?? null);
    if (run) return run;
    const tags = this.runs().map((r) => r.tag);
    throw new UsageError(
      tag
        ? `--tag: no run "${tag}" in this task; runs: ${tags.join(", ") || "none"}`
        : `no run to ${doing} in this task; start one with \`autoresearch run\``,
    );
  }

  /** The run named `tag`, or every run. */
  pickAll(tag?: string): RunRow[] {
    return tag ? [this.pick(tag)] : this.runs();
  }

  setRunStatus(runId: number, status: RunStatus, reason: string | null = null): void {
    this.sql("UPDATE runs SET status = ?, stop_reason = ?, updated_at = ? WHERE id = ?").run(
      status,
      reason,
      Date.now(),
      runId,
    );
  }

  /** What the run measures; changed only before its baseline is kept. */
  setMetric(runId: number, metric: string, goal: "minimize" | "maximize"): void {
    this.sql("UPDATE runs SET metric = ?, goal = ? WHERE id = ?").run(metric, goal, runId);
  }

  setMaxTrials(runId: number, maxTrials: number | null): void {
    this.sql("UPDATE runs SET max_trials = ? WHERE id = ?").run(maxTrials, runId);
  }

  /** Forgets a run and everything recorded of it, in one transaction. */
  deleteRun(runId: number): void {
    const trials = "SELECT id FROM trials WHERE run_id = ?";
    this.db
      .transaction(() => {
        this.sql(
          "DELETE FROM evaluations WHERE promotion_id IN (SELECT id FROM promotions WHERE run_id = ?)",
        ).run(runId);
        this.sql("DELETE FROM promotions WHERE run_id = ?").run(runId);
        this.sql("DELETE FROM events WHERE run_id = ?").run(runId);
        this.sql(`DELETE FROM replicates WHERE trial_id IN (${trials})`).run(runId);
        this.sql(`DELETE FROM proposals WHERE trial_id IN (${trials})`).run(runId);
        this.sql("UPDATE runs SET incumbent_id = NULL WHERE id = ?").run(runId);
        this.sql("DELETE FROM trials WHERE run_id = ?").run(runId);
        this.sql("DELETE FROM runs WHERE id = ?").run(runId);
      })
      .immediate();
    this.cached = null;
  }

  /** The commit a run starts from, while it has no kept baseline yet. */
  setBaseCommit(runId: number, commit: string): void {
    this.sql("UPDATE runs SET base_commit = ? WHERE id = ?").run(commit, runId);
  }

  setExecutor(runId: number, executorJson: string): void {
    this.sql("UPDATE runs SET executor_json = ? WHERE id = ?").run(executorJson, runId);
  }

  setSandbox(runId: number, mode: string): void {
    this.sql("UPDATE runs SET sandbox = ? WHERE id = ?").run(mode, runId);
  }

  /** The run's noise floor: the spread of the metric over seeds of unchanged code. */
  setNoise(runId: number, noise: NoiseFloor): void {
    this.sql("UPDATE runs SET noise_json = ? WHERE id = ?").run(JSON.stringify(noise), runId);
  }

  /** The held-out check of a kept trial. */
  setTrialVerify(trialId: number, verify: VerifyResult): void {
    this.sql("UPDATE trials SET verify_metric = ?, verify_json = ? WHERE id = ?").run(
      verify.metric,
      JSON.stringify(verify),
      trialId,
    );
    this.wrote(trialId);
  }

  countReplicates(runId: number): number {
    return (
      this.sql(
        "SELECT COUNT(*) AS c FROM replicates WHERE trial_id IN (SELECT id FROM trials WHERE run_id = ?)",
      ).get(runId) as { c: number }
    ).c;
  }

  setMaxUsd(runId: number, maxUsd: number | null): void {
    this.sql("UPDATE runs SET max_usd = ? WHERE id = ?").run(maxUsd, runId);
  }

  /**
   * GPU-seconds a run has used: each finished replicate and promotion evaluation, for as
   * many GPUs as it held (its slot's, else `gpus` from the task).
   */
  gpuSeconds(runId: number, gpus: number): number {
    const row = this.sql(
      `SELECT
           (SELECT COALESCE(SUM(r.duration_ms * CASE WHEN r.gpus IS NULL OR r.gpus = '' THEN @gpus
                   ELSE length(r.gpus) - length(replace(r.gpus, ',', '')) + 1 END), 0)
              FROM replicates r JOIN trials t ON t.id = r.trial_id WHERE t.run_id = @runId)
         + (SELECT COALESCE(SUM(e.finished_at - e.started_at) * @gpus, 0)
              FROM evaluations e JOIN promotions p ON p.id = e.promotion_id
              WHERE p.run_id = @runId AND e.finished_at IS NOT NULL AND e.started_at IS NOT NULL)
         AS ms`,
    ).get({ runId, gpus }) as { ms: number };
    return row.ms / 1000;
  }

  /** Verdicts of the run's trials (the baseline aside) finished since `since`, newest first. */
  recentVerdicts(runId: number, since: number, limit: number): Verdict[] {
    return (
      this.sql(
        `SELECT verdict FROM trials WHERE run_id = ? AND state = 'done' AND baseline = 0
             AND finished_at >= ? ORDER BY finished_at DESC, id DESC LIMIT ?`,
      ).all(runId, since, limit) as { verdict: Verdict }[]
    ).map((r) => r.verdict);
  }

  setStops(runId: number, stops: string): void {
    this.sql("UPDATE runs SET stops_json = ? WHERE id = ?").run(stops, runId);
  }

  /** Dollars spent on proposals in a run (proposals of unknown price count zero). */
  spentUsd(runId: number): number {
    const row = this.sql(
      "SELECT COALESCE(SUM(p.cost_usd), 0) AS usd FROM proposals p JOIN trials t ON t.id = p.trial_id WHERE t.run_id = ?",
    ).get(runId) as { usd: number };
    return row.usd;
  }

  /**
   * Marks that a session of the run begins, before it recovers what the last one left: what
   * the recovery records (trials ended, replicates read back) is this session's work, and
   * would otherwise stretch a killed session's end up to the resume.
   */
  sessionBegins(runId: number, pid: number): void {
    this.event(runId, null, SESSION_START, { pid });
  }

  /**
   * Records which orchestrator process drives the run (null to release it), and that a
   * session of the run began or ended: what the slots' busy share is measured over, so
   * that the time between a stop and a resume does not count as idle (see `runSessions`).
   */
  setOwner(runId: number, pid: number | null, start: string | null): void {
    this.db.transaction(() => {
      this.sql("UPDATE runs SET owner_pid = ?, owner_start = ?, updated_at = ? WHERE id = ?").run(
        pid,
        start,
        Date.now(),
        runId,
      );
      this.event(
        runId,
        null,
        pid === null ? SESSION_END : SESSION_START,
        pid === null ? undefined : { pid },
      );
    })();
  }

  // Trials

  /** A new trial; without `n` it takes the run's next number, in the same statement. */
  createTrial(t: {
    runId: number;
    n?: number;
    baseline: boolean;
    parentCommit: string;
    researcher: string;
    /** The trial whose change this one re-applies on a newer incumbent. */
    rebaseOf?: number | null;
  }): TrialRow {
    const { lastInsertRowid } = this.sql(
      `INSERT INTO trials (run_id, n, baseline, parent_commit, state, researcher, created_at, rebase_of)
         VALUES (?, COALESCE(?, (SELECT COALESCE(MAX(n), -1) + 1 FROM trials WHERE run_id = ?)),
           ?, ?, 'proposing', ?, ?, ?)`,
    ).run(
      t.runId,
      t.n ?? null,
      t.runId,
      t.baseline ? 1 : 0,
      t.parentCommit,
      t.researcher,
      Date.now(),
      t.rebaseOf ?? null,
    );
    this.wrote(Number(lastInsertRowid));
    return this.trialById(Number(lastInsertRowid))!;
  }

  trialById(id: number): TrialRow | null {
    const raw = this.sql(`SELECT ${TRIAL_COLUMNS} FROM trials WHERE id = ?`).get(id);
    return raw ? trialFrom(raw as Raw<TrialRow>) : null;
  }

  trial(runId: number, n: number): TrialRow | null {
    const raw = this.sql(`SELECT ${TRIAL_COLUMNS} FROM trials WHERE run_id = ? AND n = ?`).get(
      runId,
      n,
    );
    return raw ? trialFrom(raw as Raw<TrialRow>) : null;
  }

  /** A run's trials in order; the rows are shared and frozen, the array is the caller's. */
  trials(runId: number): TrialRow[] {
    return [...this.load(runId).rows];
  }

  /** The run's trials as cached, read anew when needed. */
  private load(runId: number): Cached {
    const version = this.db.pragma("data_version", { simple: true }) as number;
    const cached = this.cached;
    if (cached?.runId === runId && cached.version === version) return cached;
    // Row by row, so that a long run's raw rows are not all held beside their converted
    // copies: a larger process makes every later fork (each git command, replicate) slower.
    const rows: TrialRow[] = [];
    const select = this.sql(`SELECT ${TRIAL_COLUMNS} FROM trials WHERE run_id = ? ORDER BY n`);
    for (const raw of select.iterate(runId) as IterableIterator<Raw<TrialRow>>)
      rows.push(Object.freeze(trialFrom(raw)));
    const loaded: Cached = {
      runId,
      version,
      rows,
      counted: rows.filter(countsTowardMax).length,
      finished: null,
      byParent: null,
      kept: null,
    };
    // Inside a transaction the rows may yet be rolled back: not kept.
    this.cached = this.db.inTransaction ? null : loaded;
    return loaded;
  }

  /** After a write to trial `id` by this connection: its row in the cache, as it now is. */
  private wrote(id: number): void {
    const cached = this.cached;
    if (!cached) return;
    if (this.db.inTransaction) {
      this.cached = null;
      return;
    }
    const row = this.trialById(id);
    if (!row || row.runId !== cached.runId) return;
    const at = cached.rows.findLastIndex((t) => t.n <= row.n);
    const old = at >= 0 && cached.rows[at]!.n === row.n ? cached.rows[at]! : null;
    const frozen = Object.freeze(row);
    if (old) cached.rows[at] = frozen;
    else cached.rows.splice(at + 1, 0, frozen);
    cached.counted += Number(countsTowardMax(row)) - Number(old ? countsTowardMax(old) : false);
    // A keep undone or moved to another commit: derived anew; one still kept is replaced in place.
    if (old?.verdict === "keep" && (row.verdict !== "keep" || row.commit !== old.commit))
      cached.kept = null;
    else if (cached.kept) indexKept(cached.kept, frozen);
    if (old?.state === "done") {
      // A finished trial rewritten (a held-out result, a reopening): derived anew when asked.
      cached.finished = null;
      cached.byParent = null;
    } else if (row.state === "done") {
      if (cached.finished) {
        const before = cached.finished.findLastIndex((t) => t.n < row.n);
        cached.finished.splice(before + 1, 0, frozen);
      }
      if (cached.byParent) index(cached.byParent, frozen);
    }
  }

  /**
   * A run's finished trials in order (a copy of the list; the rows are shared and frozen).
   * Kept in step as trials finish, so asking once per proposal costs little however long
   * the run.
   */
  finished(runId: number): TrialRow[] {
    const cached = this.load(runId);
    cached.finished ??= cached.rows.filter((t) => t.state === "done");
    return cached.finished.slice();
  }

  /**
   * The run's trial kept at `commit` (the latest, should there be two). Looked up in an
   * index kept in step as trials finish: every replicate's judging asks, and a scan back to
   * the last keep grows with the run (a long plateau is most of it).
   */
  keptAt(runId: number, commit: string): TrialRow | null {
    const cached = this.load(runId);
    if (!cached.kept) {
      cached.kept = new Map();
      for (const t of cached.rows) indexKept(cached.kept, t);
    }
    return cached.kept.get(commit) ?? null;
  }

  /** The finished trials whose parent is `commit`, by title (the latest of each). */
  triedOn(runId: number, commit: string): ReadonlyMap<string, TrialRow> {
    const cached = this.load(runId);
    if (!cached.byParent) {
      cached.byParent = new Map();
      for (const t of cached.rows) if (t.state === "done") index(cached.byParent, t);
    }
    return cached.byParent.get(commit) ?? new Map();
  }

  nextTrialNumber(runId: number): number {
    const row = this.sql("SELECT MAX(n) AS n FROM trials WHERE run_id = ?").get(runId) as {
      n: number | null;
    };
    return row.n === null ? 0 : row.n + 1;
  }

  /**
   * Trials that count toward --max-trials: an interrupted one is run again, and a failed
   * baseline is followed by a new one once the task is fixed, so neither counts.
   */
  countTrials(runId: number): number {
    return this.load(runId).counted;
  }

  /** An interrupted trial made ready to run again (its replicates so far stay recorded). */
  reopenTrial(trialId: number): void {
    this.sql(
      `UPDATE trials SET state = 'running', verdict = NULL, reason = NULL, metric = NULL,
           finished_at = NULL, estimate_json = NULL WHERE id = ? AND verdict = 'interrupted'`,
    ).run(trialId);
    this.wrote(trialId);
  }

  /** The trial whose commit is the run's incumbent, or null before the baseline is kept. */
  incumbent(runId: number): TrialRow | null {
    const run = this.runById(runId);
    return run?.incumbentId ? this.trialById(run.incumbentId) : null;
  }

  setTrialProposal(
    trialId: number,
    p: { title: string; hypothesis: string | null; proposeMs: number | null },
  ): void {
    this.sql("UPDATE trials SET title = ?, hypothesis = ?, propose_ms = ? WHERE id = ?").run(
      p.title,
      p.hypothesis,
      p.proposeMs,
      trialId,
    );
    this.wrote(trialId);
  }

  setTrialCommit(
    trialId: number,
    c: { commit: string; commitMs: number; linesAdded: number; linesRemoved: number },
  ): void {
    this.sql(
      "UPDATE trials SET commit_sha = ?, commit_ms = ?, lines_added = ?, lines_removed = ? WHERE id = ?",
    ).run(c.commit, c.commitMs, c.linesAdded, c.linesRemoved, trialId);
    this.wrote(trialId);
  }

  setTrialState(trialId: number, state: TrialState): void {
    this.sql("UPDATE trials SET state = ? WHERE id = ?").run(state, trialId);
    this.wrote(trialId);
  }

  /** Records the verdict; a kept trial becomes the run's incumbent in the same transaction. */
  finishTrial(trialId: number, result: TrialResult): void {
    this.db
      .transaction(() => {
        this.sql(
          `UPDATE trials SET state = 'done', verdict = ?, reason = ?, metric = ?, incumbent_metric = ?,
               metrics_json = ?, run_ms = ?, finished_at = ?, estimate_json = ? WHERE id = ?`,
        ).run(
          result.verdict,
          result.reason,
          result.metric,
          result.incumbentMetric,
          JSON.stringify(result.metrics),
          result.runMs,
          Date.now(),
          result.estimate ? JSON.stringify(result.estimate) : null,
          trialId,
        );
        if (result.verdict === "keep")
          this.sql(
            "UPDATE runs SET incumbent_id = ?, updated_at = ? WHERE id = (SELECT run_id FROM trials WHERE id = ?)",
          ).run(trialId, Date.now(), trialId);
      })
      .immediate();
    this.wrote(trialId);
  }

  recordProposal(
    trialId: number,
    p: {
      researcher: string;
      title: string | null;
      hypothesis: string | null;
      detail: unknown;
      error: string | null;
      durationMs: number;
      usage?: ProposalUsage | null;
    },
  ): void {
    this.sql(
      `INSERT OR REPLACE INTO proposals (trial_id, researcher, title, hypothesis, detail_json, error,
           duration_ms, created_at, model, tokens_in, tokens_out, cost_usd, turns)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      trialId,
      p.researcher,
      p.title,
      p.hypothesis,
      p.detail === undefined ? null : JSON.stringify(p.detail),
      p.error,
      p.durationMs,
      Date.now(),
      p.usage?.model ?? null,
      p.usage?.tokensIn ?? null,
      p.usage?.tokensOut ?? null,
      p.usage?.costUsd ?? null,
      p.usage?.turns ?? null,
    );
  }

  proposal(trialId: number): {
    researcher: string;
    detail: unknown;
    error: string | null;
    usage: ProposalUsage | null;
  } | null {
    const row = this.sql(
      `SELECT researcher, detail_json AS detail, error, model, tokens_in AS tokensIn,
           tokens_out AS tokensOut, cost_usd AS costUsd, turns FROM proposals WHERE trial_id = ?`,
    ).get(trialId) as
      | {
          researcher: string;
          detail: string | null;
          error: string | null;
          model: string | null;
          tokensIn: number | null;
          tokensOut: number | null;
          costUsd: number | null;
          turns: number | null;
        }
      | undefined;
    if (!row) return null;
    const usage: ProposalUsage | null =
      row.model === null
        ? null
        : {
            model: row.model,
            tokensIn: row.tokensIn ?? 0,
            tokensOut: row.tokensOut ?? 0,
            costUsd: row.costUsd,
            turns: row.turns ?? 0,
          };
    const detail: unknown = row.detail ? JSON.parse(row.detail) : null;
    return { researcher: row.researcher, detail, error: row.error, usage };
  }

  // Replicates

  startReplicate(r: {
    trialId: number;
    idx: number;
    seed: number;
    slot: string | null;
    logPath: string;
  }): number {
    const { lastInsertRowid } = this.sql(
      `INSERT INTO replicates (trial_id, idx, seed, slot, state, log_path, started_at)
         VALUES (?, ?, ?, ?, 'running', ?, ?)`,
    ).run(r.trialId, r.idx, r.seed, r.slot, r.logPath, Date.now());
    return Number(lastInsertRowid);
  }

  /**
   * Where a replicate runs: its slot and process (local) or job (SLURM). When it runs, not
   * waits (a queued job, a process waiting for its slot's turn), comes from
   * `setReplicateRunning`.
   */
  setReplicateProcess(
    replicateId: number,
    p: {
      slot: string;
      pid?: number | null;
      pidStart?: string | null;
      jobId?: string | null;
      gpus?: string | null;
    },
  ): void {
    this.sql(
      "UPDATE replicates SET slot = ?, pid = ?, pid_start = ?, job_id = ?, gpus = ?, running_at = NULL WHERE id = ?",
    ).run(p.slot, p.pid ?? null, p.pidStart ?? null, p.jobId ?? null, p.gpus ?? null, replicateId);
  }

  /** When a queued job (SLURM) or a waiting process (overlap) started to run. */
  setReplicateRunning(replicateId: number, at: number): void {
    this.sql("UPDATE replicates SET running_at = COALESCE(running_at, ?) WHERE id = ?").run(
      at,
      replicateId,
    );
  }

  finishReplicate(replicateId: number, r: ReplicateResult): void {
    this.sql(
      `UPDATE replicates SET state = 'done', outcome = ?, reason = ?, exit_code = ?, signal = ?,
           metric = ?, metrics_json = ?, log_bytes = ?, log_tail = ?, duration_ms = ?, finished_at = ?
         WHERE id = ?`,
    ).run(
      r.outcome,
      r.reason,
      r.exitCode,
      r.signal,
      r.metric,
      JSON.stringify(r.metrics),
      r.logBytes,
      r.logTail,
      r.durationMs,
      r.endedAt ?? Date.now(),
      replicateId,
    );
  }

  replicates(trialId: number): ReplicateRow[] {
    return (
      this.sql(`SELECT ${REPLICATE_COLUMNS} FROM replicates WHERE trial_id = ? ORDER BY idx`).all(
        trialId,
      ) as Raw<ReplicateRow>[]
    ).map(replicateFrom);
  }

  /** Replicates of a run still marked running: after a kill, their processes may be orphans. */
  runningReplicates(runId: number): ReplicateRow[] {
    return (
      this.sql(
        `SELECT ${REPLICATE_COLUMNS} FROM replicates
           WHERE state = 'running' AND trial_id IN (SELECT id FROM trials WHERE run_id = ?)`,
      ).all(runId) as Raw<ReplicateRow>[]
    ).map(replicateFrom);
  }

  // Events

  event(runId: number, trialId: number | null, kind: string, data?: unknown): void {
    this.sql(
      "INSERT INTO events (run_id, trial_id, at, kind, data_json) VALUES (?, ?, ?, ?, ?)",
    ).run(runId, trialId, Date.now(), kind, data === undefined ? null : JSON.stringify(data));
  }

  /** The run's events in order; of one kind only, when given. */
  events(
    runId: number,
    kind?: string,
  ): { at: number; trialId: number | null; kind: string; data: unknown }[] {
    const rows = this.sql(
      `SELECT at, trial_id AS trialId, kind, data_json AS data FROM events WHERE run_id = ?${kind ? " AND kind = ?" : ""} ORDER BY id`,
    ).all(...(kind ? [runId, kind] : [runId])) as {
      at: number;
      trialId: number | null;
      kind: string;
      data: string | null;
    }[];
    return rows.map((r) => ({ ...r, data: r.data ? JSON.parse(r.data) : null }));
  }
}
