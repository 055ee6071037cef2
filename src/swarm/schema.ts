/**
 * The swarm's tables, in their own PostgreSQL schema `swarm` so that a lab can keep the
 * swarm in a database it uses for other things. Hosts never write these tables
 * themselves: they hold SELECT only, and every write goes through the functions of
 * `functions.ts`, which name the host by the role it logged in as.
 */
export const TABLES = `
CREATE TABLE swarm.task (
  -- One row: the task every host must run.
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  task_hash  text NOT NULL,
  task_file  text NOT NULL,
  metric     text NOT NULL,
  goal       text NOT NULL CHECK (goal IN ('minimize', 'maximize')),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE swarm.hosts (
  -- A host is the database role it logs in as.
  name           text PRIMARY KEY,
  hardware_class text NOT NULL,
  stages         text[] NOT NULL DEFAULT '{}',
  slots          integer NOT NULL CHECK (slots >= 0),
  joined_at      timestamptz NOT NULL DEFAULT now(),
  last_seen      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE swarm.trials (
  id             bigserial PRIMARY KEY,
  host           text NOT NULL REFERENCES swarm.hosts (name),
  -- The host's own name for the trial (unique on the host): what makes an upload
  -- retried after a lost connection land once.
  uid            text NOT NULL,
  run_tag        text,
  local_n        integer,
  title          text,
  hypothesis     text,
  diff           text,
  diff_hash      text,
  param_key      text,
  parent_commit  text,
  commit_sha     text,
  hardware_class text NOT NULL,
  verdict        text NOT NULL CHECK (verdict IN
                   ('keep', 'discard', 'crash', 'timeout', 'invalid', 'tampered', 'interrupted')),
  baseline       boolean NOT NULL DEFAULT false,
  metric         double precision,
  metrics        jsonb NOT NULL DEFAULT '{}',
  cost_usd       double precision NOT NULL DEFAULT 0,
  run_ms         bigint NOT NULL DEFAULT 0,
  finished_at    timestamptz,
  recorded_at    timestamptz NOT NULL DEFAULT now(),
  -- The uploading transaction: a reader's cursor (see history in trials.ts).
  xid            xid8 NOT NULL DEFAULT pg_current_xact_id(),
  UNIQUE (host, uid)
);
CREATE INDEX trials_xid ON swarm.trials (xid);
CREATE INDEX trials_diff_hash ON swarm.trials (diff_hash) WHERE diff_hash IS NOT NULL;
CREATE INDEX trials_param_key ON swarm.trials (param_key) WHERE param_key IS NOT NULL;

CREATE TABLE swarm.claims (
  id          bigserial PRIMARY KEY,
  host        text NOT NULL REFERENCES swarm.hosts (name),
  -- The host's name for the trial the claim is for: what makes a retried claim land once.
  uid         text,
  diff_hash   text,
  param_key   text,
  title       text,
  claimed_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  released_at timestamptz,
  CHECK (diff_hash IS NOT NULL OR param_key IS NOT NULL)
);
-- Only open claims are looked up by key; released ones are history.
CREATE INDEX claims_open_diff ON swarm.claims (diff_hash) WHERE released_at IS NULL;
CREATE INDEX claims_open_param ON swarm.claims (param_key) WHERE released_at IS NULL;

CREATE TABLE swarm.incumbents (
  -- One row per hardware class; version 0 means no incumbent yet.
  hardware_class text PRIMARY KEY,
  version        bigint NOT NULL DEFAULT 0,
  trial_id       bigint REFERENCES swarm.trials (id),
  commit_sha     text,
  metric         double precision,
  host           text,
  updated_at     timestamptz NOT NULL DEFAULT now()
);
`;
