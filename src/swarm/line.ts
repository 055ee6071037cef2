import { SwarmError } from "../errors.js";
import type { Queryable } from "./connection.js";
import { DEFINER, INSERT_TRIAL } from "./functions.js";
import { INCUMBENT_CHANNEL, incumbent } from "./incumbent.js";
import { type RecordResult, recordTrialIn } from "./trials.js";
import type { TrialUpload } from "./types.js";

/**
 * `advance_line` as schema v2 made it, or as v4 remakes it (`moves`): v4 also records
 * every move, so that a retried move that landed is told so even once another host's
 * keep has moved the line past it.
 */
function advanceLineSql(moves: boolean): string {
  const landed = moves
    ? `
  SELECT version INTO v_version FROM swarm.line_moves WHERE trial_id = t.id;
  IF FOUND THEN
    RETURN jsonb_build_object('ok', true, 'version', v_version);
  END IF;`
    : "";
  const record = moves
    ? `
  INSERT INTO swarm.line_moves (version, trial_id) VALUES (v_version, t.id);`
    : "";
  return `CREATE ${moves ? "OR REPLACE " : ""}FUNCTION swarm.advance_line(p_expected bigint, p_trial bigint) RETURNS jsonb ${DEFINER} AS $$
DECLARE cur swarm.line%ROWTYPE; t record; v_version bigint;
BEGIN
  PERFORM swarm.require_host();
  SELECT * INTO cur FROM swarm.line FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'the swarm has no line yet' USING ERRCODE = 'AR001';
  END IF;
  SELECT id, host, verdict, baseline, parent_commit, commit_sha INTO t
    FROM swarm.trials WHERE id = p_trial;
  IF NOT FOUND OR t.host <> session_user THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'unknown-trial', 'version', cur.version);
  END IF;
  -- A retry of a move that landed (its answer lost with the connection) is told so.
  IF cur.trial_id = t.id THEN
    RETURN jsonb_build_object('ok', true, 'version', cur.version);
  END IF;${landed}
  IF cur.version IS DISTINCT FROM p_expected THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'stale', 'version', cur.version);
  END IF;
  IF t.verdict <> 'keep' OR t.baseline OR t.commit_sha IS NULL THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'not-keep', 'version', cur.version);
  END IF;
  IF t.parent_commit IS DISTINCT FROM cur.commit_sha THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'other-parent', 'version', cur.version);
  END IF;
  UPDATE swarm.line SET version = version + 1, commit_sha = t.commit_sha, trial_id = t.id,
    host = t.host, updated_at = now() RETURNING version INTO v_version;${record}
  PERFORM pg_notify('${INCUMBENT_CHANNEL}', jsonb_build_object('line', v_version)::text);
  RETURN jsonb_build_object('ok', true, 'version', v_version);
END $$;
`;
}

/**
 * Schema v2: the line, the code every host builds on. Its head moves by a keep made on
 * the head itself (whatever the class it was measured on), through `advance_line` only;
 * each class's incumbent (v1) stays the best value measured on that class.
 */
export const LINE_SQL = `
CREATE TABLE swarm.line (
  singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  -- The commit the swarm started from, and the git remote every host pushes to.
  base_commit text NOT NULL,
  remote      text NOT NULL,
  version     bigint NOT NULL DEFAULT 0,
  commit_sha  text NOT NULL,
  trial_id    bigint REFERENCES swarm.trials (id),
  host        text,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

${advanceLineSql(false)}
REVOKE ALL ON FUNCTION swarm.advance_line(bigint, bigint) FROM PUBLIC;

-- A trial uploaded as interrupted (a stop) and then continued by its host's resume: its
-- end replaces the interruption, in the same row. Anything else stays as first recorded.
-- And a host uploads trials of the hardware class it joined as.
CREATE OR REPLACE FUNCTION swarm.record_trial(p jsonb, p_release_claim bigint) RETURNS jsonb ${DEFINER} AS $$
DECLARE v_id bigint; v_created boolean := true;
BEGIN
  PERFORM swarm.require_host();
  -- A host measures on its own hardware class only: a value it wrote for another class
  -- would be adopted there as that class's measurement.
  IF p->>'hardware_class' IS DISTINCT FROM
     (SELECT hardware_class FROM swarm.hosts WHERE name = session_user) THEN
    RAISE EXCEPTION 'host % joined as hardware class %, not %', session_user,
      (SELECT hardware_class FROM swarm.hosts WHERE name = session_user), p->>'hardware_class'
      USING ERRCODE = '22023';
  END IF;
  PERFORM swarm.lock_keys(p->>'diff_hash', p->>'param_key');
${INSERT_TRIAL}  IF v_id IS NULL THEN
    v_created := false;
    UPDATE swarm.trials SET title = p->>'title', hypothesis = p->>'hypothesis',
      diff = p->>'diff', diff_hash = p->>'diff_hash', param_key = p->>'param_key',
      commit_sha = p->>'commit_sha', verdict = p->>'verdict',
      metric = (p->>'metric')::double precision, metrics = coalesce(p->'metrics', '{}'::jsonb),
      cost_usd = coalesce((p->>'cost_usd')::double precision, 0),
      run_ms = coalesce((p->>'run_ms')::bigint, 0),
      finished_at = (p->>'finished_at')::timestamptz, recorded_at = now(),
      xid = pg_current_xact_id()
     WHERE host = session_user AND uid = p->>'uid' AND verdict = 'interrupted'
       AND p->>'verdict' <> 'interrupted'
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
      SELECT id INTO v_id FROM swarm.trials WHERE host = session_user AND uid = p->>'uid';
    END IF;
  END IF;
  UPDATE swarm.claims SET released_at = now()
   WHERE id = p_release_claim AND host = session_user AND released_at IS NULL;
  RETURN jsonb_build_object('id', v_id, 'created', v_created);
END $$;
`;

/**
 * Schema v4: the line's moves, one row each, so that `advance_line` knows a keep it moved
 * the line to before (see advanceLineSql). A swarm made before it starts with its head.
 */
export const LINE_MOVES_SQL = `
CREATE TABLE swarm.line_moves (
  version  bigint PRIMARY KEY,
  trial_id bigint NOT NULL UNIQUE REFERENCES swarm.trials (id),
  moved_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO swarm.line_moves (version, trial_id)
  SELECT version, trial_id FROM swarm.line WHERE trial_id IS NOT NULL;

${advanceLineSql(true)}`;

/** The line's head: the code every host builds on, and the trial that put it there. */
export interface LineHead {
  baseCommit: string;
  remote: string;
  version: number;
  commitSha: string;
  /** Null at version 0, when the head is the base commit. */
  trialId: number | null;
  host: string | null;
  /** The head trial's run tag and number on its host: where its commit is on the remote. */
  runTag: string | null;
  localN: number | null;
  title: string | null;
  hypothesis: string | null;
  updatedAt: number;
}

interface LineRow {
  base_commit: string;
  remote: string;
  version: string;
  commit_sha: string;
  trial_id: string | null;
  host: string | null;
  run_tag: string | null;
  local_n: number | null;
  title: string | null;
  hypothesis: string | null;
  updated_at: Date;
}

/**
 * Whether the database holds the swarm's line (schema v2 on): false where `init` has not
 * run, and for a swarm of schema v1, which had no line to keep.
 */
export async function hasSchema(db: Queryable): Promise<boolean> {
  const [r] = await db.query<{ present: boolean }>(
    "looking for the swarm's schema",
    "SELECT to_regclass('swarm.line') IS NOT NULL AS present",
  );
  return r!.present;
}

/** The line's head; null before `init` recorded it. */
export async function lineHead(db: Queryable): Promise<LineHead | null> {
  const [r] = await db.query<LineRow>(
    "reading the line",
    `SELECT l.base_commit, l.remote, l.version, l.commit_sha, l.trial_id, l.host,
            t.run_tag, t.local_n, t.title, t.hypothesis, l.updated_at
       FROM swarm.line l LEFT JOIN swarm.trials t ON t.id = l.trial_id`,
  );
  if (!r) return null;
  return {
    baseCommit: r.base_commit,
    remote: r.remote,
    version: Number(r.version),
    commitSha: r.commit_sha,
    trialId: r.trial_id === null ? null : Number(r.trial_id),
    host: r.host,
    runTag: r.run_tag,
    localN: r.local_n,
    title: r.title,
    hypothesis: r.hypothesis,
    updatedAt: r.updated_at.getTime(),
  };
}

/** Records the line's start at `init`; an existing line is left as it is. */
export async function startLine(db: Queryable, baseCommit: string, remote: string) {
  return db.query(
    "recording the line's start",
    `INSERT INTO swarm.line (base_commit, remote, commit_sha) VALUES ($1, $2, $1)
     ON CONFLICT DO NOTHING`,
    [baseCommit, remote],
  );
}

/** Why the line did not move to a keep. */
export type AdvanceRefusal = "stale" | "not-keep" | "other-parent" | "unknown-trial";

export type AdvanceResult =
  | { ok: true; version: number; trial: RecordResult }
  | { ok: false; reason: AdvanceRefusal; version: number };

/**
 * Uploads a keep and moves the line's head to it, in one transaction: when the line has
 * moved past `expectedVersion` (another host's keep landed first), neither happens, so the
 * swarm never holds a keep that the line refused. The caller records the trial as it
 * ends up (a discard carried onto the new head) and uploads that instead. The keep is
 * offered as its class's best in the same transaction (see below).
 */
export async function advanceLine(
  db: { transaction<T>(doing: string, work: (db: Queryable) => Promise<T>): Promise<T> },
  expectedVersion: number,
  keep: TrialUpload,
  releaseClaim?: number,
): Promise<AdvanceResult> {
  // A SwarmError, so that the transaction rethrows it as it is.
  const refused = new SwarmError("refused");
  let answer: AdvanceResult | undefined;
  try {
    return await db.transaction("moving the line to a keep", async (tx) => {
      const trial = await recordTrialIn(tx, keep, releaseClaim);
      const [row] = await tx.query<{
        r: { ok: boolean; reason?: AdvanceRefusal; version: number };
      }>("moving the line to a keep", "SELECT swarm.advance_line($1, $2) AS r", [
        expectedVersion,
        trial.id,
      ]);
      const a = row!.r;
      if (a.ok) {
        // The class's best moves with the line: a move that commits after its host stopped
        // waiting for the answer (a hung database, at the run's limit or a stop) would
        // otherwise leave it behind until that host runs again. Not better, or another
        // host's swap first: a refusal, and the move stands (the host offers it again).
        const best = await incumbent(tx, keep.hardwareClass);
        await tx.query(
          "offering the keep as its class's best",
          "SELECT swarm.cas_incumbent($1, $2, $3)",
          [keep.hardwareClass, best.version, trial.id],
        );
        return { ok: true, version: Number(a.version), trial };
      }
      answer = { ok: false, reason: a.reason!, version: Number(a.version) };
      // Rolls the upload back with the refusal.
      throw refused;
    });
  } catch (error) {
    if (error === refused && answer) return answer;
    throw error;
  }
}
