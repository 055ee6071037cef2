/**
 * A swarm's database as a lab would set it up: a throwaway cluster, then the text of
 * `setupSql` run through psql (roles, database, who may connect), then `init` as the
 * owner, which gives the hosts' grants. Passwords are made here and given to psql as
 * variables, never written in the SQL.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { remoteRef, taskHash } from "../../src/orchestrator/swarm.js";
import { type ConnectOptions, SwarmClient, setupSql } from "../../src/swarm/index.js";
import type { Goal, HostInfo } from "../../src/swarm/types.js";
import { type GitDaemon, startGitDaemon } from "../helpers/git-daemon.js";
import { type PgCluster, startPostgres } from "../helpers/postgres.js";
import { type CliResult, QUADRATIC_YAML, quadraticTask, runCli, sh, tempDir } from "../helpers.js";

export const TASK_FILE =
  "name: quadratic\nrun: node train.mjs\nmetric: { name: score, goal: minimize }\n";
export const TASK_HASH = "hash-of-the-quadratic-task";

export interface SwarmFixture {
  cluster: PgCluster;
  database: string;
  ownerUrl: string;
  /** The URL a host logs in with (its own role and password). */
  hostUrl(name: string): string;
  /** A client logged in as host `name`, joined with `hardwareClass`, closed after the file. */
  host(name: string, hardwareClass?: string, options?: ConnectOptions): Promise<SwarmClient>;
  /** SQL sent as host `name` straight to the database, as a host that skips the client would. */
  rawSql(name: string): Promise<RawSql>;
  /** The owner's client (the role that ran init). */
  owner: SwarmClient;
  close(): Promise<void>;
}

export type RawSql = (text: string, params?: unknown[]) => Promise<pg.QueryResult>;

export function hostInfo(hardwareClass: string): HostInfo {
  return { taskHash: TASK_HASH, taskFile: TASK_FILE, hardwareClass, stages: ["d8"], slots: 1 };
}

/** A keep of class cpu on `parent` at `commit`, as a host uploads it when it moves the line. */
export function lineKeep(uid: string, parent: string, commit: string) {
  return {
    uid,
    hardwareClass: "cpu",
    verdict: "keep" as const,
    metric: 1,
    parentCommit: parent,
    commitSha: commit,
  };
}

export async function swarmFixture(
  hosts: readonly string[],
  options: {
    goal?: Goal;
    maxConnections?: number;
    init?: boolean;
    /** The server's settings beyond the test defaults (`-c name=value`). */
    settings?: Record<string, string | number>;
  } = {},
): Promise<SwarmFixture> {
  const cluster = await startPostgres({
    maxConnections: options.maxConnections ?? 100,
    ...(options.settings ? { settings: options.settings } : {}),
  });
  const database = "swarm";
  const passwords = new Map([["owner", secret()], ...hosts.map((h) => [h, secret()] as const)]);
  const file = join(cluster.dir, "setup.sql");
  writeFileSync(
    file,
    setupSql({ database, owner: "swarm_owner", hostsRole: "swarm_hosts", hosts }),
  );
  const vars = [
    "-v",
    `owner_password=${passwords.get("owner")}`,
    ...hosts.flatMap((h, i) => ["-v", `host${i + 1}_password=${passwords.get(h)}`]),
  ];
  cluster.tool("psql", [
    "-X",
    "-q",
    "-v",
    "ON_ERROR_STOP=1",
    "-h",
    cluster.dir,
    "-p",
    String(cluster.port),
    "-U",
    "postgres",
    "-d",
    "postgres",
    ...vars,
    "-f",
    file,
  ]);
  const ownerUrl = cluster.url("swarm_owner", passwords.get("owner")!, database);
  const owner = await SwarmClient.connect(ownerUrl);
  // Left to `swarm init` for a test of the whole command.
  if (options.init !== false)
    await owner.init(
      {
        taskHash: TASK_HASH,
        taskFile: TASK_FILE,
        metric: "score",
        goal: options.goal ?? "minimize",
      },
      { hostsRole: "swarm_hosts" },
    );
  const clients: { close(): Promise<void> }[] = [owner];
  const hostUrl = (name: string) => cluster.url(name, passwords.get(name)!, database);
  return {
    cluster,
    database,
    ownerUrl,
    owner,
    hostUrl,
    async host(name, hardwareClass = "cpu", connect = {}) {
      const client = await SwarmClient.connect(hostUrl(name), connect);
      clients.push(client);
      await client.join(hostInfo(hardwareClass));
      return client;
    },
    async rawSql(name) {
      const client = new pg.Client({ connectionString: hostUrl(name) });
      await client.connect();
      clients.push({ close: () => client.end() });
      return (text, params = []) => client.query(text, params);
    },
    async close() {
      for (const c of clients.splice(0)) await c.close();
    },
  };
}

const secret = () => randomBytes(9).toString("base64url");

/** A swarm as `swarm init` starts it from a task through the CLI, and its hosts' clones. */
export interface SwarmTask {
  /** The task's folder that ran init. */
  origin: string;
  /** The remote's git:// URL. */
  remote: string;
  /** The remote's bare repository, as a folder. */
  bare: string;
  /** The daemon that serves the remote (stop it to make the remote unreachable). */
  daemon: GitDaemon;
  /** What init printed. */
  init: CliResult;
  /** A fresh clone of the swarm's task for a host. */
  clone(host: string): string;
  /** The host's URL without its password, which goes in PGPASSWORD as a user gives it. */
  login(host: string): { url: string; env: Record<string, string> };
}

/**
 * Runs `swarm init` on a fresh quadratic task (or its `yaml`), with a `git daemon` remote.
 * `research`: the source of a command researcher, research.mjs, under the greedy judge,
 * with `yaml` lines added to that task file.
 */
export async function initSwarmTask(
  swarm: SwarmFixture,
  options: { yaml?: string; extra?: Record<string, string>; research?: string } = {},
): Promise<SwarmTask> {
  const daemon = await startGitDaemon();
  const remote = daemon.bare("task.git");
  const origin = quadraticTask(
    options.research === undefined
      ? options
      : {
          yaml: [
            ...QUADRATIC_YAML,
            "judge: { policy: greedy }",
            "researcher: { kind: command, command: node research.mjs }",
            ...(options.yaml ? [options.yaml] : []),
          ].join("\n"),
          extra: { ...options.extra, "research.mjs": options.research },
        },
  );
  const init = await runCli([
    ...["swarm", "init", "-C", origin, "--database", swarm.ownerUrl],
    ...["--remote", remote, "--hosts-role", "swarm_hosts"],
  ]);
  return {
    origin,
    remote,
    bare: join(daemon.base, "task.git"),
    daemon,
    init,
    clone(host) {
      const dir = tempDir(`ar-host-${host}-`);
      sh(dir, `git clone -q -b autoresearch-swarm ${remote} .`);
      return dir;
    },
    login(host) {
      const url = new URL(swarm.hostUrl(host));
      const env = { PGPASSWORD: decodeURIComponent(url.password) };
      url.password = "";
      return { url: url.toString(), env };
    },
  };
}

/**
 * Host `host` of `hardwareClass` keeps a change to the swarm's base as its run would: the
 * commit (train.mjs as `edit` makes it, titled `title`) pushed to its trial's ref, run t's
 * #1, and the line moved to it with `metric`. Returns the commit.
 */
export async function keepOnBase(
  swarm: SwarmFixture,
  task: SwarmTask,
  keep: {
    host: string;
    hardwareClass: string;
    title: string;
    metric: number;
    edit: (train: string) => string;
  },
): Promise<string> {
  const work = task.clone(keep.host);
  const base = sh(work, "git rev-parse HEAD");
  const train = join(work, "train.mjs");
  writeFileSync(train, keep.edit(readFileSync(train, "utf8")));
  sh(work, `git -c user.name=k -c user.email=k@k commit -qam '${keep.title}'`);
  const commit = sh(work, "git rev-parse HEAD");
  sh(work, `git push -q ${task.remote} ${commit}:${remoteRef(keep.host, "t", 1)}`);
  const client = await SwarmClient.connect(swarm.hostUrl(keep.host));
  try {
    const taskFile = readFileSync(join(task.origin, "autoresearch.yaml"), "utf8");
    await client.join({
      taskHash: taskHash(taskFile),
      taskFile,
      hardwareClass: keep.hardwareClass,
      stages: [],
      slots: 1,
    });
    const moved = await client.advance(0, {
      uid: "t/1",
      runTag: "t",
      localN: 1,
      title: keep.title,
      hardwareClass: keep.hardwareClass,
      verdict: "keep",
      metric: keep.metric,
      parentCommit: base,
      commitSha: commit,
    });
    if (!moved.ok) throw new Error(`the line did not move to ${keep.host}'s keep: ${moved.reason}`);
    return commit;
  } finally {
    await client.close();
  }
}
