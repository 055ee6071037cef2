import type { Queryable, SwarmConnection } from "./connection.js";
import { DEFINER } from "./functions.js";
import { diffHash } from "./normalize.js";
import { exactText, storable } from "./text.js";
import type { SwarmTrial, SwarmVerdict, TrialUpload } from "./types.js";

/** What an upload did: the trial's id in the swarm, and whether this call created it. */
export interface RecordResult {
  id: number;
  /** False when an earlier upload of the same uid had landed (a retry): nothing changed. */
  created: boolean;
}

/**
 * Uploads a finished trial as this host's, exactly once per `uid`: a retry after a lost
 * connection (whether or not the first attempt landed) answers the same id and leaves the
 * first record as it was. With `releaseClaim`, that claim is released in the same
 * transaction, so no other host can claim the change between the two. Characters that
 * PostgreSQL cannot store become U+FFFD in free text; in a name (uid, class, hash) they
 * are refused with a SwarmError, before anything is sent.
 */
export async function recordTrial(
  db: SwarmConnection,
  trial: TrialUpload,
  releaseClaim?: number,
): Promise<RecordResult> {
  if (!trial.noise) return recordTrialIn(db, trial, releaseClaim);
  // The measurement and its noise floor land together: a host that finds one finds both.
  return db.transaction("upload of a baseline", (tx) => recordTrialIn(tx, trial, releaseClaim));
}

/**
 * Schema v4 (with the line's moves): a baseline's noise floor beside its measurement, so
 * that each hardware class measures the starting commit once. Written by the host that
 * measured it, once; values a host could make up are its own trial's, like its metric.
 */
export const NOISE_SQL = `
ALTER TABLE swarm.trials ADD COLUMN noise jsonb;

CREATE FUNCTION swarm.record_noise(p_uid text, p_noise jsonb) RETURNS boolean ${DEFINER} AS $$
DECLARE v_id bigint;
BEGIN
  PERFORM swarm.require_host();
  IF jsonb_typeof(p_noise->'values') IS DISTINCT FROM 'array'
     OR jsonb_typeof(p_noise->'seeds') IS DISTINCT FROM 'array'
     OR jsonb_array_length(p_noise->'values') < 2
     OR jsonb_array_length(p_noise->'values') <> jsonb_array_length(p_noise->'seeds')
     OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_noise->'values') v WHERE jsonb_typeof(v) <> 'number')
     OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_noise->'seeds') v WHERE jsonb_typeof(v) <> 'number')
  THEN
    RAISE EXCEPTION 'a noise floor is {seeds, values}: as many seeds as values, two or more numbers'
      USING ERRCODE = '22023';
  END IF;
  UPDATE swarm.trials SET noise = jsonb_build_object('seeds', p_noise->'seeds', 'values', p_noise->'values')
   WHERE host = session_user AND uid = p_uid AND baseline AND verdict = 'keep' AND noise IS NULL
  RETURNING id INTO v_id;
  RETURN v_id IS NOT NULL;
END $$;

REVOKE ALL ON FUNCTION swarm.record_noise(text, jsonb) FROM PUBLIC;
`;

/** `recordTrial` on any connection, such as one transaction's. */
export async function recordTrialIn(
  db: Queryable,
  trial: TrialUpload,
  releaseClaim?: number,
): Promise<RecordResult> {
  const finite = (x: number | null | undefined) =>
    x === null || x === undefined || !Number.isFinite(x) ? null : x;
  const payload = {
    uid: exactText("the trial's uid", trial.uid),
    run_tag: exactText("the trial's run tag", trial.runTag ?? null),
    local_n: trial.localN ?? null,
    title: storable(trial.title ?? null),
    hypothesis: storable(trial.hypothesis ?? null),
    diff: storable(trial.diff ?? null),
    diff_hash: exactText(
      "the trial's diff hash",
      trial.diffHash ?? (trial.diff === undefined ? null : diffHash(trial.diff)),
    ),
    param_key: exactText("the trial's parameter key", trial.paramKey ?? null),
    parent_commit: exactText("the trial's parent commit", trial.parentCommit ?? null),
    commit_sha: exactText("the trial's commit", trial.commitSha ?? null),
    hardware_class: exactText("the trial's hardware class", trial.hardwareClass),
    verdict: trial.verdict,
    baseline: trial.baseline ?? false,
    metric: finite(trial.metric),
    // JSON has no NaN or Infinity: such values are left out rather than refused.
    metrics: Object.fromEntries(
      Object.entries(trial.metrics ?? {})
        .filter(([, v]) => Number.isFinite(v))
        .map(([name, v]) => [storable(name), v]),
    ),
    cost_usd: trial.costUsd ?? 0,
    run_ms: Math.round(trial.runMs ?? 0),
    finished_at: trial.finishedAt === undefined ? null : new Date(trial.finishedAt).toISOString(),
  };
  const [row] = await db.query<{ r: { id: number; created: boolean } }>(
    "upload of a trial",
    "SELECT swarm.record_trial($1, $2) AS r",
    [payload, releaseClaim ?? null],
  );
  const a = row!.r;
  if (trial.noise)
    await db.query("upload of a noise floor", "SELECT swarm.record_noise($1, $2)", [
      payload.uid,
      { seeds: trial.noise.seeds, values: trial.noise.values.map(finite) },
    ]);
  return { id: Number(a.id), created: a.created };
}

interface TrialRow {
  id: string;
  host: string;
  uid: string;
  run_tag: string | null;
  local_n: number | null;
  title: string | null;
  hypothesis: string | null;
  diff: string | null;
  diff_hash: string | null;
  param_key: string | null;
  parent_commit: string | null;
  commit_sha: string | null;
  hardware_class: string;
  verdict: SwarmVerdict;
  baseline: boolean;
  metric: number | null;
  metrics: Record<string, number>;
  cost_usd: number;
  run_ms: string;
  finished_at: Date | null;
  recorded_at: Date;
}

/** Trials read from the swarm, and where the next read takes up. */
export interface HistoryPage {
  trials: SwarmTrial[];
  /** Opaque; pass it to the next call to get only the trials that came since. */
  cursor: string;
}

/**
 * Every host's trials not read before `cursor` (all of them without one), in id order.
 *
 * Uploads run in parallel, so ids do not become visible in order: "ids above the last I
 * saw" could miss a trial whose upload committed late. The cursor is the horizon of the
 * read's snapshot instead (the oldest transaction then in progress): any trial that was
 * not visible then was uploaded by a transaction at or after it, so the next read asks
 * for those, leaving out the ids it already handed back.
 */
export async function history(
  db: SwarmConnection,
  options: { cursor?: string; withDiffs?: boolean } = {},
): Promise<HistoryPage> {
  const [from, seenText] = (options.cursor ?? "0:").split(":");
  const seen = new Set((seenText ?? "").split(",").filter(Boolean).map(Number));
  const diff = options.withDiffs === false ? "NULL::text AS diff" : "t.diff";
  const rows = await db.query<TrialRow & { horizon: string; xid: string | null }>(
    "history",
    `WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon)
     SELECT h.horizon::text AS horizon, t.xid::text AS xid, t.id, t.host, t.uid, t.run_tag,
            t.local_n, t.title, t.hypothesis, ${diff}, t.diff_hash, t.param_key,
            t.parent_commit, t.commit_sha, t.hardware_class, t.verdict, t.baseline, t.metric,
            t.metrics, t.cost_usd, t.run_ms, t.finished_at, t.recorded_at
       FROM h LEFT JOIN swarm.trials t ON t.xid >= $1::xid8
      ORDER BY t.id`,
    [BigInt(from ?? "0").toString()],
  );
  const horizon = BigInt(rows[0]!.horizon);
  const fresh = rows.filter((r) => r.id !== null && !seen.has(Number(r.id)));
  // Ids at or past the new horizon will match the next read again: it leaves them out.
  const again = rows.filter((r) => r.xid !== null && BigInt(r.xid) >= horizon).map((r) => r.id);
  return { trials: fresh.map(fromRow), cursor: `${horizon}:${again.join(",")}` };
}

/** The keeps that made `commits` (any host's; not adoptions, which measure a commit again). */
export async function keepsOf(db: SwarmConnection, commits: string[]): Promise<SwarmTrial[]> {
  const rows = await db.query<TrialRow>(
    "reading the keeps of the line",
    `SELECT DISTINCT ON (commit_sha) id, host, uid, run_tag, local_n, title, hypothesis,
            NULL::text AS diff, diff_hash, param_key, parent_commit, commit_sha, hardware_class,
            verdict, baseline, metric, metrics, cost_usd, run_ms, finished_at, recorded_at
       FROM swarm.trials
      WHERE commit_sha = ANY($1) AND verdict = 'keep' AND NOT baseline
      ORDER BY commit_sha, id`,
    [commits],
  );
  return rows.map(fromRow);
}

function fromRow(r: TrialRow): SwarmTrial {
  return {
    id: Number(r.id),
    host: r.host,
    uid: r.uid,
    runTag: r.run_tag,
    localN: r.local_n,
    title: r.title,
    hypothesis: r.hypothesis,
    diff: r.diff,
    diffHash: r.diff_hash,
    paramKey: r.param_key,
    parentCommit: r.parent_commit,
    commitSha: r.commit_sha,
    hardwareClass: r.hardware_class,
    verdict: r.verdict,
    baseline: r.baseline,
    metric: r.metric,
    metrics: r.metrics,
    costUsd: r.cost_usd,
    runMs: Number(r.run_ms),
    finishedAt: r.finished_at?.getTime() ?? null,
    recordedAt: r.recorded_at.getTime(),
  };
}
