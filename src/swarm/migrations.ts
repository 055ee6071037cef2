import { SwarmError } from "../errors.js";
import type { SwarmConnection } from "./connection.js";
import { FUNCTIONS, LEAVE_SQL } from "./functions.js";
import { grantsSql } from "./grants.js";
import { LINE_MOVES_SQL, LINE_SQL, startLine } from "./line.js";
import { PROMOTIONS_SQL, type PromotionRule } from "./promotions.js";
import { TABLES } from "./schema.js";
import { NOISE_SQL } from "./trials.js";
import type { SwarmTask } from "./types.js";

/**
 * The swarm's schema, one entry per version; `swarm.migrations` records the versions
 * applied. Never edit a released entry: add a new one.
 */
export const MIGRATIONS: readonly string[] = [
  // v1: task, hosts, trials, claims, incumbents and the host functions.
  TABLES + FUNCTIONS,
  // v2: the line, the code every host builds on.
  LINE_SQL,
  // v3: promotions of the line's head to larger stages, run by hosts that can.
  PROMOTIONS_SQL,
  // v4: the line's moves, so that a retried move that landed is known as such; a
  // baseline's noise floor, so that a class measures the starting commit once.
  LINE_MOVES_SQL + NOISE_SQL,
  // v5: a host that ends its run cleanly says it left (status shows it gone at once).
  LEAVE_SQL,
];

/** What `init` is given besides the task. */
export interface InitOptions {
  /** The role every host is a member of: it gets the grants. */
  hostsRole?: string;
  /** The line's start: the commit pushed to the remote, and the remote. */
  baseCommit?: string;
  remote?: string;
  /** What the task file says of promotions, for the database to hold requests to. */
  promotion?: PromotionRule | null;
}

/** What `init` did. */
export interface InitResult {
  /** Schema versions applied now (empty when the database was up to date). */
  applied: number[];
  /** Whether this call recorded the task (false: it was there already, the same). */
  taskRecorded: boolean;
}

/**
 * Creates or brings up to date the swarm's schema, records the task, and gives
 * `hostsRole` its grants. Run by the swarm's owner role. Safe to run again and from
 * several processes at once: all of it happens in one transaction holding an advisory
 * lock. Refuses (SwarmError) a task other than the one recorded, naming the difference.
 */
export async function initSwarm(
  db: SwarmConnection,
  task: SwarmTask,
  options: InitOptions = {},
): Promise<InitResult> {
  return db.transaction("init", async (tx) => {
    await tx.query(
      "init",
      "SELECT pg_advisory_xact_lock(hashtextextended('autoresearch.swarm.init', 0))",
    );
    await tx.query("init", "CREATE SCHEMA IF NOT EXISTS swarm");
    await tx.query(
      "init",
      `CREATE TABLE IF NOT EXISTS swarm.migrations (
         version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const [row] = await tx.query<{ v: number }>(
      "init",
      "SELECT coalesce(max(version), 0)::integer AS v FROM swarm.migrations",
    );
    const current = row!.v;
    if (current > MIGRATIONS.length)
      throw new SwarmError(
        `the swarm's database ${db.where} has schema version ${current}, newer than this autoresearch understands (${MIGRATIONS.length}); upgrade autoresearch`,
      );
    const applied: number[] = [];
    for (let version = current + 1; version <= MIGRATIONS.length; version++) {
      await tx.query(`migration ${version}`, MIGRATIONS[version - 1]!);
      await tx.query("init", "INSERT INTO swarm.migrations (version) VALUES ($1)", [version]);
      applied.push(version);
    }
    const [recorded] = await tx.query<SwarmTaskRow>("init", TASK_SELECT);
    if (recorded) refuseOtherTask(fromTaskRow(recorded), task, db.where);
    else
      await tx.query(
        "init",
        "INSERT INTO swarm.task (task_hash, task_file, metric, goal) VALUES ($1, $2, $3, $4)",
        [task.taskHash, task.taskFile, task.metric, task.goal],
      );
    if (options.baseCommit && options.remote)
      await startLine(tx, options.baseCommit, options.remote);
    if (options.promotion !== undefined)
      await tx.query("init", "UPDATE swarm.task SET promote_stage = $1, promote_every = $2", [
        options.promotion?.stage ?? null,
        options.promotion?.every ?? null,
      ]);
    if (options.hostsRole) await tx.query("grants", grantsSql(options.hostsRole));
    return { applied, taskRecorded: !recorded };
  });
}

/** The row of swarm.task, as selected by TASK_SELECT. */
export interface SwarmTaskRow {
  task_hash: string;
  task_file: string;
  metric: string;
  goal: "minimize" | "maximize";
}

export const TASK_SELECT = "SELECT task_hash, task_file, metric, goal FROM swarm.task";

export function fromTaskRow(row: SwarmTaskRow): SwarmTask {
  return { taskHash: row.task_hash, taskFile: row.task_file, metric: row.metric, goal: row.goal };
}

/**
 * Throws SwarmError when `mine` is another task than the swarm's: the message names the
 * hashes and the lines that differ, so the person sees what to change.
 */
export function refuseOtherTask(
  swarms: Pick<SwarmTask, "taskHash" | "taskFile">,
  mine: Pick<SwarmTask, "taskHash" | "taskFile">,
  where: string,
): void {
  if (swarms.taskHash === mine.taskHash) return;
  throw new SwarmError(
    `this task file differs from the one of the swarm at ${where} (hash ${short(mine.taskHash)}, the swarm's ${short(swarms.taskHash)}); every host must run the same task.\n${lineDifference(swarms.taskFile, mine.taskFile)}`,
  );
}

const short = (hash: string) => hash.slice(0, 12);

/** The lines only one of two texts holds, at most `limit` of each, as "-"/"+" lines. */
export function lineDifference(swarms: string, mine: string, limit = 10): string {
  const a = swarms.split("\n");
  const b = mine.split("\n");
  const onlyA = a.filter((line) => !b.includes(line));
  const onlyB = b.filter((line) => !a.includes(line));
  if (onlyA.length === 0 && onlyB.length === 0)
    return "The same lines in another order or with other blank lines.";
  const show = (lines: string[], mark: string) => [
    ...lines.slice(0, limit).map((l) => `  ${mark} ${l}`),
    ...(lines.length > limit ? [`  … and ${lines.length - limit} more`] : []),
  ];
  return [
    "The swarm's task file has (-), this one has (+):",
    ...show(onlyA, "-"),
    ...show(onlyB, "+"),
  ].join("\n");
}
