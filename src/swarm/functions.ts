/**
 * Every write a host makes, as SQL functions that run with the swarm owner's rights
 * (SECURITY DEFINER) and name the host by `session_user`, the role it logged in as, which
 * a caller cannot change. So a host writes only its own trials and claims, and moves an
 * incumbent only through `cas_incumbent`, which checks the trial's recorded result.
 * `search_path` is pinned on each, so that objects a caller makes cannot stand in for
 * the swarm's. Each answers a jsonb object: refusals that are expected outcomes (a claim
 * taken, a stale version) are values; misuse raises an error with an AR0xx SQLSTATE.
 *
 * Claims and uploads of the same key serialize on a transaction-scoped advisory lock per
 * key, so a claim cannot slip between a trial's upload and the release of its claim.
 * Nothing else serializes uploads: one lock for all of them made a thousand hosts
 * uploading at once wait on each other (bench/README.md, "swarm — coordination").
 *
 * The trust boundary: a host cannot act as another, but its own measurements are taken
 * as it reports them. A host that uploads a forged keep (any metric; on its own class
 * since schema v2) can move that class's incumbent to it, and no honest result beats it
 * afterwards. What the
 * database guarantees is who recorded what and that an incumbent only improves by the
 * recorded results; a lab that stops trusting a host revokes its role's membership and
 * looks at `swarm.trials WHERE host = …`.
 */
/** How every host function runs: with the owner's rights, on the swarm's schema only. */
export const DEFINER = "LANGUAGE plpgsql SECURITY DEFINER SET search_path = swarm, pg_temp";

/** Codes the functions raise; the client turns them into SwarmError messages. */
export const SQLSTATE = { noTask: "AR001", otherTask: "AR002", notJoined: "AR003" } as const;

/** The upload's insert, as `record_trial` (v1, and v2 in line.ts) makes it. */
export const INSERT_TRIAL = `  INSERT INTO swarm.trials (host, uid, run_tag, local_n, title, hypothesis, diff, diff_hash,
    param_key, parent_commit, commit_sha, hardware_class, verdict, baseline, metric, metrics,
    cost_usd, run_ms, finished_at)
  VALUES (session_user, p->>'uid', p->>'run_tag', (p->>'local_n')::integer, p->>'title',
    p->>'hypothesis', p->>'diff', p->>'diff_hash', p->>'param_key', p->>'parent_commit',
    p->>'commit_sha', p->>'hardware_class', p->>'verdict',
    coalesce((p->>'baseline')::boolean, false), (p->>'metric')::double precision,
    coalesce(p->'metrics', '{}'::jsonb), coalesce((p->>'cost_usd')::double precision, 0),
    coalesce((p->>'run_ms')::bigint, 0), (p->>'finished_at')::timestamptz)
  ON CONFLICT (host, uid) DO NOTHING
  RETURNING id INTO v_id;
`;

export const FUNCTIONS = `
CREATE FUNCTION swarm.lock_keys(p_diff_hash text, p_param_key text) RETURNS void
LANGUAGE plpgsql SET search_path = swarm, pg_temp AS $$
DECLARE k text;
BEGIN
  -- In sorted order, so that two transactions locking the same pair cannot deadlock.
  FOR k IN SELECT x FROM unnest(ARRAY['d:' || p_diff_hash, 'p:' || p_param_key]) AS x
           WHERE x IS NOT NULL ORDER BY x LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended('autoresearch.swarm.key.' || k, 0));
  END LOOP;
END $$;

CREATE FUNCTION swarm.require_host() RETURNS void
LANGUAGE plpgsql SET search_path = swarm, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM swarm.hosts WHERE name = session_user) THEN
    RAISE EXCEPTION 'host % has not joined the swarm', session_user USING ERRCODE = '${SQLSTATE.notJoined}';
  END IF;
END $$;

CREATE FUNCTION swarm.join_host(p_task_hash text, p_hardware_class text, p_stages text[], p_slots integer)
RETURNS jsonb ${DEFINER} AS $$
DECLARE v_hash text;
BEGIN
  SELECT task_hash INTO v_hash FROM swarm.task;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'the swarm has no task yet' USING ERRCODE = '${SQLSTATE.noTask}';
  END IF;
  IF v_hash <> p_task_hash THEN
    RAISE EXCEPTION 'task file hash % differs from the swarm''s %', p_task_hash, v_hash
      USING ERRCODE = '${SQLSTATE.otherTask}';
  END IF;
  INSERT INTO swarm.hosts (name, hardware_class, stages, slots)
  VALUES (session_user, p_hardware_class, coalesce(p_stages, '{}'), p_slots)
  ON CONFLICT (name) DO UPDATE SET hardware_class = excluded.hardware_class,
    stages = excluded.stages, slots = excluded.slots, last_seen = now();
  RETURN jsonb_build_object('host', session_user);
END $$;

CREATE FUNCTION swarm.heartbeat() RETURNS jsonb ${DEFINER} AS $$
BEGIN
  UPDATE swarm.hosts SET last_seen = now() WHERE name = session_user;
  IF NOT FOUND THEN PERFORM swarm.require_host(); END IF;
  RETURN jsonb_build_object('host', session_user);
END $$;

CREATE FUNCTION swarm.record_trial(p jsonb, p_release_claim bigint) RETURNS jsonb ${DEFINER} AS $$
DECLARE v_id bigint; v_created boolean := true;
BEGIN
  PERFORM swarm.require_host();
  PERFORM swarm.lock_keys(p->>'diff_hash', p->>'param_key');
  -- A retry of an upload that landed, or one racing it, finds the first: it stands.
${INSERT_TRIAL}  IF v_id IS NULL THEN
    SELECT id INTO v_id FROM swarm.trials WHERE host = session_user AND uid = p->>'uid';
    v_created := false;
  END IF;
  UPDATE swarm.claims SET released_at = now()
   WHERE id = p_release_claim AND host = session_user AND released_at IS NULL;
  RETURN jsonb_build_object('id', v_id, 'created', v_created);
END $$;

CREATE FUNCTION swarm.claim(p_diff_hash text, p_param_key text, p_lease_s double precision,
  p_title text, p_uid text)
RETURNS jsonb ${DEFINER} AS $$
DECLARE t record; c record; v_id bigint; v_expires timestamptz;
BEGIN
  IF p_diff_hash IS NULL AND p_param_key IS NULL THEN
    RAISE EXCEPTION 'a claim needs a diff hash or a parameter key' USING ERRCODE = '22023';
  END IF;
  IF NOT p_lease_s > 0 THEN
    RAISE EXCEPTION 'a lease must be longer than 0 s, not %', p_lease_s USING ERRCODE = '22023';
  END IF;
  PERFORM swarm.require_host();
  PERFORM swarm.lock_keys(p_diff_hash, p_param_key);
  -- A retry of a claim that landed (its answer lost with the connection) finds that claim,
  -- rather than a refusal by the host's own claim.
  IF p_uid IS NOT NULL THEN
    SELECT id, expires_at INTO c FROM swarm.claims
     WHERE host = session_user AND uid = p_uid AND released_at IS NULL
       AND expires_at > clock_timestamp() AND diff_hash IS NOT DISTINCT FROM p_diff_hash
       AND param_key IS NOT DISTINCT FROM p_param_key;
  END IF;
  IF p_uid IS NOT NULL AND FOUND THEN
    RETURN jsonb_build_object('ok', true, 'claim', c.id, 'expires_at', c.expires_at);
  END IF;
  -- An interrupted trial did not finish: its change may be tried again.
  SELECT id, host, title, verdict INTO t FROM swarm.trials
   WHERE verdict <> 'interrupted' AND (diff_hash = p_diff_hash OR param_key = p_param_key)
   ORDER BY id LIMIT 1;
  IF FOUND THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'tried', 'host', t.host, 'trial', t.id,
      'title', t.title, 'verdict', t.verdict);
  END IF;
  SELECT id, host, title, expires_at INTO c FROM swarm.claims
   WHERE released_at IS NULL AND expires_at > clock_timestamp()
     AND (diff_hash = p_diff_hash OR param_key = p_param_key)
   ORDER BY id LIMIT 1;
  IF FOUND THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'claimed', 'host', c.host, 'claim', c.id,
      'title', c.title, 'expires_at', c.expires_at);
  END IF;
  v_expires := clock_timestamp() + make_interval(secs => p_lease_s);
  INSERT INTO swarm.claims (host, uid, diff_hash, param_key, title, expires_at)
  VALUES (session_user, p_uid, p_diff_hash, p_param_key, p_title, v_expires) RETURNING id INTO v_id;
  RETURN jsonb_build_object('ok', true, 'claim', v_id, 'expires_at', v_expires);
END $$;

CREATE FUNCTION swarm.renew(p_claim bigint, p_lease_s double precision) RETURNS jsonb ${DEFINER} AS $$
DECLARE c record; v_expires timestamptz;
BEGIN
  SELECT diff_hash, param_key INTO c FROM swarm.claims WHERE id = p_claim AND host = session_user;
  IF NOT FOUND OR NOT p_lease_s > 0 THEN RETURN jsonb_build_object('ok', false); END IF;
  -- The key locks, so that a claim of the same key sees either the lapsed lease or the new one.
  PERFORM swarm.lock_keys(c.diff_hash, c.param_key);
  UPDATE swarm.claims SET expires_at = clock_timestamp() + make_interval(secs => p_lease_s)
   WHERE id = p_claim AND released_at IS NULL AND expires_at > clock_timestamp()
   RETURNING expires_at INTO v_expires;
  RETURN jsonb_build_object('ok', FOUND, 'expires_at', v_expires);
END $$;

CREATE FUNCTION swarm.release(p_claim bigint) RETURNS jsonb ${DEFINER} AS $$
BEGIN
  UPDATE swarm.claims SET released_at = now()
   WHERE id = p_claim AND host = session_user AND released_at IS NULL;
  RETURN jsonb_build_object('ok', FOUND);
END $$;

CREATE FUNCTION swarm.cas_incumbent(p_class text, p_expected bigint, p_trial bigint)
RETURNS jsonb ${DEFINER} AS $$
DECLARE v_goal text; cur swarm.incumbents%ROWTYPE; t record; v_refusal text; v_version bigint;
BEGIN
  SELECT goal INTO v_goal FROM swarm.task;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'the swarm has no task yet' USING ERRCODE = '${SQLSTATE.noTask}';
  END IF;
  -- The trial first (trials never change): a refused one makes no row for its class.
  SELECT id, verdict, hardware_class, metric, commit_sha, host INTO t
    FROM swarm.trials WHERE id = p_trial;
  v_refusal := CASE WHEN NOT FOUND THEN 'unknown-trial'
    WHEN t.hardware_class IS DISTINCT FROM p_class THEN 'other-class'
    WHEN t.verdict <> 'keep' THEN 'not-keep'
    WHEN t.metric IS NULL OR t.metric = 'NaN'::double precision THEN 'no-metric' END;
  IF v_refusal IS NOT NULL THEN
    RETURN jsonb_build_object('ok', false, 'reason', v_refusal, 'version',
      coalesce((SELECT version FROM swarm.incumbents WHERE hardware_class = p_class), 0));
  END IF;
  INSERT INTO swarm.incumbents (hardware_class) VALUES (p_class) ON CONFLICT DO NOTHING;
  SELECT * INTO cur FROM swarm.incumbents WHERE hardware_class = p_class FOR UPDATE;
  -- A retry of a swap that landed (its answer lost with the connection) is told so.
  IF cur.trial_id = t.id THEN
    RETURN jsonb_build_object('ok', true, 'version', cur.version);
  END IF;
  -- IS DISTINCT FROM: a null expected version is stale, not a swap without a check.
  IF cur.version IS DISTINCT FROM p_expected THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'stale', 'version', cur.version);
  END IF;
  IF cur.trial_id IS NOT NULL
      AND NOT ((v_goal = 'minimize' AND t.metric < cur.metric)
            OR (v_goal = 'maximize' AND t.metric > cur.metric)) THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'not-better', 'version', cur.version,
      'incumbent_metric', cur.metric);
  END IF;
  UPDATE swarm.incumbents SET version = version + 1, trial_id = t.id, commit_sha = t.commit_sha,
    metric = t.metric, host = t.host, updated_at = now()
   WHERE hardware_class = p_class RETURNING version INTO v_version;
  -- A wake-up only: listeners read the incumbent from the table (anyone may NOTIFY).
  PERFORM pg_notify('autoresearch_swarm_incumbent',
    jsonb_build_object('class', p_class, 'version', v_version)::text);
  RETURN jsonb_build_object('ok', true, 'version', v_version);
END $$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA swarm FROM PUBLIC;
`;

/**
 * Schema v5: a host that ends its run cleanly says it left, so that status shows it gone
 * at once rather than alive until its last heartbeat ages out. A host has left while its
 * `left_at` is not older than its `last_seen`: a join or heartbeat after it (a host that
 * beats is not gone) moves `last_seen` past it. A host killed outright never leaves, and
 * ages out as before.
 */
export const LEAVE_SQL = `
ALTER TABLE swarm.hosts ADD COLUMN left_at timestamptz;

-- The calling host's own row only; one that has not joined has nothing to leave. It gives
-- up as its caller does: a leave that landed after the host joined again would hide it.
CREATE FUNCTION swarm.leave() RETURNS jsonb ${DEFINER} SET lock_timeout = '1500ms' AS $$
BEGIN
  UPDATE swarm.hosts SET left_at = greatest(clock_timestamp(), last_seen) WHERE name = session_user;
  RETURN jsonb_build_object('host', session_user, 'left', FOUND);
END $$;

REVOKE ALL ON FUNCTION swarm.leave() FROM PUBLIC;
`;

/** The functions a host role may call, with their argument types (for GRANT). */
export const HOST_FUNCTIONS = [
  "swarm.join_host(text, text, text[], integer)",
  "swarm.heartbeat()",
  "swarm.record_trial(jsonb, bigint)",
  "swarm.claim(text, text, double precision, text, text)",
  "swarm.renew(bigint, double precision)",
  "swarm.release(bigint)",
  "swarm.cas_incumbent(text, bigint, bigint)",
  "swarm.advance_line(bigint, bigint)",
  "swarm.record_noise(text, jsonb)",
  "swarm.leave()",
] as const;

/**
 * A host function the newest schema version adds: a host role that may call it has the
 * newest grants (join checks it, so that a missing grant is said at join, not midway).
 */
export const NEWEST_HOST_FUNCTION = "swarm.leave()";
