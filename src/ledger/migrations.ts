/**
 * The ledger's schema, one entry per version. A database at version k gets entries
 * k..end applied in one transaction each; PRAGMA user_version records where it stands.
 * Never edit a released entry: add a new one.
 */
export const MIGRATIONS: readonly string[] = [
  // v1: runs, trials, proposals, replicates, events.
  `
  CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    tag           TEXT NOT NULL UNIQUE,
    task_name     TEXT NOT NULL,
    task_json     TEXT NOT NULL,
    metric        TEXT NOT NULL,
    goal          TEXT NOT NULL CHECK (goal IN ('minimize', 'maximize')),
    base_commit   TEXT NOT NULL,
    branch        TEXT NOT NULL,
    researcher    TEXT NOT NULL,
    judge         TEXT NOT NULL,
    seed          INTEGER NOT NULL,
    max_trials    INTEGER,
    status        TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'finished', 'failed')),
    stop_reason   TEXT,
    incumbent_id  INTEGER REFERENCES trials(id),
    owner_pid     INTEGER,
    owner_start   TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
  );
  CREATE TABLE trials (
    id               INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL REFERENCES runs(id),
    n                INTEGER NOT NULL,
    baseline         INTEGER NOT NULL DEFAULT 0,
    parent_commit    TEXT NOT NULL,
    commit_sha       TEXT,
    state            TEXT NOT NULL CHECK (state IN ('proposing', 'running', 'done')),
    verdict          TEXT CHECK (verdict IN
                       ('keep', 'discard', 'crash', 'timeout', 'invalid', 'tampered', 'interrupted')),
    reason           TEXT,
    title            TEXT,
    hypothesis       TEXT,
    researcher       TEXT NOT NULL,
    metric           REAL,
    incumbent_metric REAL,
    metrics_json     TEXT,
    lines_added      INTEGER,
    lines_removed    INTEGER,
    propose_ms       INTEGER,
    commit_ms        INTEGER,
    run_ms           INTEGER,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    UNIQUE (run_id, n)
  );
  CREATE TABLE proposals (
    trial_id     INTEGER PRIMARY KEY REFERENCES trials(id),
    researcher   TEXT NOT NULL,
    title        TEXT,
    hypothesis   TEXT,
    detail_json  TEXT,
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
  );
  CREATE TABLE replicates (
    id           INTEGER PRIMARY KEY,
    trial_id     INTEGER NOT NULL REFERENCES trials(id),
    idx          INTEGER NOT NULL,
    seed         INTEGER NOT NULL,
    slot         TEXT,
    pid          INTEGER,
    pid_start    TEXT,
    state        TEXT NOT NULL CHECK (state IN ('running', 'done')),
    outcome      TEXT CHECK (outcome IN
                   ('ok', 'crash', 'timeout', 'no_metric', 'bad_metric', 'constraint', 'interrupted')),
    reason       TEXT,
    exit_code    INTEGER,
    signal       TEXT,
    metric       REAL,
    metrics_json TEXT,
    log_path     TEXT NOT NULL,
    log_bytes    INTEGER,
    log_tail     TEXT,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    duration_ms  INTEGER,
    UNIQUE (trial_id, idx)
  );
  CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    run_id    INTEGER NOT NULL REFERENCES runs(id),
    trial_id  INTEGER REFERENCES trials(id),
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    data_json TEXT
  );
  CREATE INDEX trials_by_run ON trials (run_id, n);
  CREATE INDEX replicates_by_trial ON replicates (trial_id, idx);
  CREATE INDEX events_by_run ON events (run_id, at);
  `,
  // v2: what a proposal cost, and the researcher's settings and spending limit of a run.
  `
  ALTER TABLE proposals ADD COLUMN model TEXT;
  ALTER TABLE proposals ADD COLUMN tokens_in INTEGER;
  ALTER TABLE proposals ADD COLUMN tokens_out INTEGER;
  ALTER TABLE proposals ADD COLUMN cost_usd REAL;
  ALTER TABLE proposals ADD COLUMN turns INTEGER;
  ALTER TABLE runs ADD COLUMN researcher_json TEXT;
  ALTER TABLE runs ADD COLUMN max_usd REAL;
  `,
  // v3: parallel runs: confirmations of rebased wins, where and when a replicate really ran.
  `
  ALTER TABLE trials ADD COLUMN rebase_of INTEGER;
  ALTER TABLE replicates ADD COLUMN job_id TEXT;
  ALTER TABLE replicates ADD COLUMN gpus TEXT;
  ALTER TABLE replicates ADD COLUMN running_at INTEGER;
  ALTER TABLE runs ADD COLUMN executor_json TEXT;
  `,
  // v4: trustworthy keeps: the noise floor, the judge's estimate, held-out checks, and
  // promotions to a larger stage with their evaluations.
  `
  ALTER TABLE runs ADD COLUMN noise_json TEXT;
  ALTER TABLE trials ADD COLUMN estimate_json TEXT;
  ALTER TABLE trials ADD COLUMN verify_metric REAL;
  ALTER TABLE trials ADD COLUMN verify_json TEXT;
  CREATE TABLE promotions (
    id               INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL REFERENCES runs(id),
    stage            TEXT NOT NULL,
    incumbent_n      INTEGER NOT NULL,
    incumbent_commit TEXT NOT NULL,
    seeds            INTEGER NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    reason           TEXT,
    table_json       TEXT,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER
  );
  CREATE TABLE evaluations (
    id           INTEGER PRIMARY KEY,
    promotion_id INTEGER NOT NULL REFERENCES promotions(id),
    label        TEXT NOT NULL,
    ablated_n    INTEGER,
    commit_sha   TEXT,
    seed         INTEGER NOT NULL,
    outcome      TEXT,
    reason       TEXT,
    metric       REAL,
    metrics_json TEXT,
    log_path     TEXT,
    started_at   INTEGER,
    finished_at  INTEGER
  );
  CREATE INDEX evaluations_by_promotion ON evaluations (promotion_id);
  `,
  // v5: stop rules kept with the run, so that a resumed run keeps them.
  `
  ALTER TABLE runs ADD COLUMN stops_json TEXT;
  `,
  // v6: the stop rules read the latest verdicts at every turn of the loop; without this
  // each read scans the whole run.
  `
  CREATE INDEX trials_by_finish ON trials (run_id, finished_at);
  `,
  // v7: the --sandbox a run was started with, so that a resumed run keeps it.
  `
  ALTER TABLE runs ADD COLUMN sandbox TEXT;
  `,
];
