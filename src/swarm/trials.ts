import type { SwarmConnection } from "./connection.js";
import { diffHash } from "./normalize.js";
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
 * transaction, so no other host can claim the change between the two.
 */
export async function recordTrial(
  db: SwarmConnection,
  trial: TrialUpload,
  releaseClaim?: number,
): Promise<RecordResult> {
  const finite = (x: number | null | undefined) =>
    x === null || x === undefined || !Number.isFinite(x) ? null : x;
  const payload = {
    uid: trial.uid,
    run_tag: trial.runTag ?? null,
    local_n: trial.localN ?? null,
    title: trial.title ?? null,
    hypothesis: trial.hypothesis ?? null,
    diff: trial.diff ?? null,
    diff_hash: trial.diffHash ?? (trial.diff === undefined ? null : diffHash(trial.diff)),
    param_key: trial.paramKey ?? null,
    parent_commit: trial.parentCommit ?? null,
    commit_sha: trial.commitSha ?? null,
    hardware_class: trial.hardwareClass,
    verdict: trial.verdict,
    baseline: trial.baseline ?? false,
    metric: finite(trial.metric),
    // JSON has no NaN or Infinity: such values are left out rather than refused.
    metrics: Object.fromEntries(
      Object.entries(trial.metrics ?? {}).filter(([, v]) => Number.isFinite(v)),
    ),
    cost_usd: trial.costUsd ?? 0,
    run_ms: Math.round(trial.runMs ?? 0),
    finished_at: trial.finishedAt === undefined ? null : new Date(trial.finishedAt).toISOString(),
  };
  const a = await db.call<{ id: number; created: boolean }>("upload of a trial", "record_trial", [
    payload,
    releaseClaim ?? null,
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

/**
 * Every host's trials with an id above `sinceId`, in id order, at most `limit`. Ids become
 * visible in increasing order (uploads serialize), so the last id read is a safe cursor
 * for the next call.
 */
export async function history(
  db: SwarmConnection,
  options: { sinceId?: number; limit?: number; withDiffs?: boolean } = {},
): Promise<SwarmTrial[]> {
  const diff = options.withDiffs === false ? "NULL::text AS diff" : "diff";
  const rows = await db.query<TrialRow>(
    "history",
    `SELECT id, host, uid, run_tag, local_n, title, hypothesis, ${diff}, diff_hash, param_key,
            parent_commit, commit_sha, hardware_class, verdict, baseline, metric, metrics,
            cost_usd, run_ms, finished_at, recorded_at
       FROM swarm.trials WHERE id > $1 ORDER BY id LIMIT $2`,
    [options.sinceId ?? 0, options.limit ?? 10_000],
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
