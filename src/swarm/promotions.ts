import type { Queryable } from "./connection.js";
import { DEFINER } from "./functions.js";

/** What the task file says of promotions: the stage the line's head goes to, every how many versions. */
export interface PromotionRule {
  stage: string;
  every: number;
}

/**
 * Schema v3: promotions across hosts. A keep that moves the line to a version that is a
 * multiple of the task's `promote_every` asks for the line's head to be tried at the next
 * stage; a host that can run that stage (`--stages`) and stands on that head takes the
 * job with a lease, runs the promotion and its ablations on its own slots, and records
 * the transfer table here, where every host reads it. A lease that lapses (its host died)
 * lets another host take the job.
 */
export const PROMOTIONS_SQL = `
-- What the task file says of promotions, recorded by init: requests must match it.
ALTER TABLE swarm.task ADD COLUMN promote_stage text, ADD COLUMN promote_every integer;

CREATE TABLE swarm.promotions (
  id           bigserial PRIMARY KEY,
  stage        text NOT NULL,
  line_version bigint NOT NULL,
  commit_sha   text NOT NULL,
  requested_by text NOT NULL,
  requested_at timestamptz NOT NULL DEFAULT now(),
  state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'failed')),
  host         text,
  lease_until  timestamptz,
  transfer     jsonb,
  reason       text,
  finished_at  timestamptz,
  UNIQUE (stage, line_version)
);

-- Asked for the line's head as it is now, at the stage and the versions the task file
-- names: a request for an older head, another stage or another version changes nothing.
CREATE FUNCTION swarm.request_promotion(p_stage text, p_version bigint) RETURNS boolean ${DEFINER} AS $$
DECLARE cur swarm.line%ROWTYPE; t swarm.task%ROWTYPE; n integer;
BEGIN
  PERFORM swarm.require_host();
  SELECT * INTO t FROM swarm.task;
  IF t.promote_stage IS NULL OR p_stage IS DISTINCT FROM t.promote_stage OR p_version < 1
     OR p_version % t.promote_every <> 0 THEN
    RETURN false;
  END IF;
  SELECT * INTO cur FROM swarm.line;
  IF NOT FOUND OR cur.version <> p_version THEN RETURN false; END IF;
  INSERT INTO swarm.promotions (stage, line_version, commit_sha, requested_by)
    VALUES (p_stage, p_version, cur.commit_sha, session_user)
    ON CONFLICT (stage, line_version) DO NOTHING;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n > 0;
END $$;

-- A lease between 1 s and an hour, whatever the caller asks.
CREATE FUNCTION swarm.lease(p_lease double precision) RETURNS interval
  LANGUAGE sql IMMUTABLE AS $$ SELECT make_interval(secs => greatest(1, least(coalesce(p_lease, 300), 3600))) $$;

-- The oldest job this host can run (one of the stages it joined with and names now, on
-- the head it stands on) that no one holds, taken with a lease.
CREATE FUNCTION swarm.take_promotion(p_stages text[], p_commit text, p_lease double precision)
  RETURNS jsonb ${DEFINER} AS $$
DECLARE p swarm.promotions%ROWTYPE; v_joined text[];
BEGIN
  PERFORM swarm.require_host();
  SELECT stages INTO v_joined FROM swarm.hosts WHERE name = session_user;
  SELECT * INTO p FROM swarm.promotions
    WHERE stage = ANY (p_stages) AND stage = ANY (v_joined) AND commit_sha = p_commit
      AND (state = 'pending' OR (state = 'running' AND lease_until < now()))
    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN RETURN NULL; END IF;
  UPDATE swarm.promotions SET state = 'running', host = session_user,
    lease_until = now() + swarm.lease(p_lease) WHERE id = p.id;
  RETURN jsonb_build_object('id', p.id, 'stage', p.stage, 'version', p.line_version,
    'commit', p.commit_sha);
END $$;

CREATE FUNCTION swarm.renew_promotion(p_id bigint, p_lease double precision) RETURNS boolean ${DEFINER} AS $$
DECLARE n integer;
BEGIN
  PERFORM swarm.require_host();
  UPDATE swarm.promotions SET lease_until = now() + swarm.lease(p_lease)
    WHERE id = p_id AND host = session_user AND state = 'running';
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n > 0;
END $$;

-- Handed back by the host holding it (it no longer stands on that head): pending again.
CREATE FUNCTION swarm.release_promotion(p_id bigint) RETURNS boolean ${DEFINER} AS $$
DECLARE n integer;
BEGIN
  PERFORM swarm.require_host();
  UPDATE swarm.promotions SET state = 'pending', host = NULL, lease_until = NULL
    WHERE id = p_id AND host = session_user AND state = 'running';
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n > 0;
END $$;

-- Only the host holding the job ends it; a job another host took over meanwhile is left.
CREATE FUNCTION swarm.finish_promotion(p_id bigint, p_state text, p_transfer jsonb, p_reason text)
  RETURNS boolean ${DEFINER} AS $$
DECLARE n integer;
BEGIN
  PERFORM swarm.require_host();
  IF p_state NOT IN ('done', 'failed') THEN
    RAISE EXCEPTION 'a promotion ends as done or failed, not %', p_state USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM swarm.promotions
                 WHERE id = p_id AND host = session_user AND state = 'running') THEN
    RETURN false;
  END IF;
  -- What every host reads: a done promotion holds a transfer table with its rows.
  IF p_state = 'done' AND jsonb_typeof(p_transfer -> 'rows') IS DISTINCT FROM 'array' THEN
    RAISE EXCEPTION 'a done promotion records a transfer table with rows' USING ERRCODE = '22023';
  END IF;
  UPDATE swarm.promotions SET state = p_state, transfer = p_transfer, reason = p_reason,
    finished_at = now(), lease_until = NULL
    WHERE id = p_id AND host = session_user AND state = 'running';
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n > 0;
END $$;

REVOKE ALL ON FUNCTION swarm.request_promotion(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION swarm.take_promotion(text[], text, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION swarm.renew_promotion(bigint, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION swarm.release_promotion(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION swarm.finish_promotion(bigint, text, jsonb, text) FROM PUBLIC;
`;

export const PROMOTION_FUNCTIONS = [
  "swarm.request_promotion(text, bigint)",
  "swarm.take_promotion(text[], text, double precision)",
  "swarm.renew_promotion(bigint, double precision)",
  "swarm.release_promotion(bigint)",
  "swarm.finish_promotion(bigint, text, jsonb, text)",
] as const;

/** A promotion job a host took: try the line's head `commit` (version `version`) at `stage`. */
export interface PromotionJob {
  id: number;
  stage: string;
  version: number;
  commit: string;
}

/** How a promotion ended: its transfer table (done), or why not (failed). */
export interface PromotionEnd {
  state: "done" | "failed";
  transfer: unknown;
  reason: string | null;
}

/** A promotion as the swarm records it, for status and pages. */
export interface SwarmPromotion extends PromotionJob {
  requestedBy: string;
  state: "pending" | "running" | "done" | "failed";
  host: string | null;
  /** The transfer table (as `autoresearch promote` writes it), once done. */
  transfer: unknown;
  reason: string | null;
  /** Running, and its host has not renewed it in time (gone, or cut off). */
  leaseLapsed: boolean;
}

export async function requestPromotion(
  db: Queryable,
  stage: string,
  version: number,
): Promise<boolean> {
  const [row] = await db.query<{ ok: boolean }>(
    "asking for a promotion",
    "SELECT swarm.request_promotion($1, $2) AS ok",
    [stage, version],
  );
  return row!.ok;
}

export async function takePromotion(
  db: Queryable,
  stages: readonly string[],
  commit: string,
  leaseS: number,
): Promise<PromotionJob | null> {
  const [row] = await db.query<{ job: PromotionJob | null }>(
    "taking a promotion",
    "SELECT swarm.take_promotion($1, $2, $3) AS job",
    [stages, commit, leaseS],
  );
  const job = row?.job;
  return job ? { ...job, id: Number(job.id), version: Number(job.version) } : null;
}

export async function renewPromotion(db: Queryable, id: number, leaseS: number): Promise<boolean> {
  const [row] = await db.query<{ ok: boolean }>(
    "renewing a promotion's lease",
    "SELECT swarm.renew_promotion($1, $2) AS ok",
    [id, leaseS],
  );
  return row!.ok;
}

export async function releasePromotion(db: Queryable, id: number): Promise<boolean> {
  const [row] = await db.query<{ ok: boolean }>(
    "handing a promotion back",
    "SELECT swarm.release_promotion($1) AS ok",
    [id],
  );
  return row!.ok;
}

export async function finishPromotion(
  db: Queryable,
  id: number,
  end: PromotionEnd,
): Promise<boolean> {
  const [row] = await db.query<{ ok: boolean }>(
    "recording a promotion's end",
    "SELECT swarm.finish_promotion($1, $2, $3, $4) AS ok",
    [id, end.state, end.transfer === null ? null : JSON.stringify(end.transfer), end.reason],
  );
  return row!.ok;
}

/** The latest `limit` promotions, newest first. */
export async function promotionsOf(db: Queryable, limit = 20): Promise<SwarmPromotion[]> {
  const rows = await db.query<{
    id: string;
    stage: string;
    line_version: string;
    commit_sha: string;
    requested_by: string;
    state: SwarmPromotion["state"];
    host: string | null;
    transfer: unknown;
    reason: string | null;
    lapsed: boolean;
  }>(
    "reading promotions",
    `SELECT id, stage, line_version, commit_sha, requested_by, state, host, transfer, reason,
            coalesce(lease_until < now(), false) AS lapsed
       FROM swarm.promotions ORDER BY id DESC LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    stage: r.stage,
    version: Number(r.line_version),
    commit: r.commit_sha,
    requestedBy: r.requested_by,
    state: r.state,
    host: r.host,
    transfer: r.transfer,
    reason: r.reason,
    leaseLapsed: r.lapsed,
  }));
}
