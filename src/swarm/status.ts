import { formatSeconds } from "../util/units.js";
import type { SwarmConnection } from "./connection.js";
import { incumbents } from "./incumbent.js";
import type { Incumbent } from "./types.js";

/** One host's line in the swarm's status. */
export interface HostStatus {
  name: string;
  hardwareClass: string;
  stages: string[];
  slots: number;
  lastSeen: number;
  /** Not left, and seen within the `aliveWithinS` the status was asked with. */
  alive: boolean;
  /** Ended its run cleanly and has not joined again since (a killed host never leaves). */
  left: boolean;
  /** When it left; null unless `left`. */
  leftAt: number | null;
  trials: number;
  keeps: number;
  costUsd: number;
  /** Claims of this host in force now. */
  inFlight: number;
}

/**
 * A host's state in one cell, as `swarm status` and the dashboard show it: "alive",
 * "left 12s ago" (it ended its run cleanly), or "silent" (not heard from lately: killed,
 * cut off, or stopped without reaching the database).
 */
export function hostState(host: HostStatus, now = Date.now()): string {
  if (host.left && host.leftAt !== null)
    return `left ${formatSeconds(Math.max(0, Math.round((now - host.leftAt) / 1000)))} ago`;
  return host.alive ? "alive" : "silent";
}

/** The swarm at a glance: what `swarm status` prints. */
export interface SwarmStatus {
  hosts: HostStatus[];
  trials: number;
  keeps: number;
  inFlight: number;
  /** The best per hardware class: each class's incumbent. */
  best: Incumbent[];
}

/**
 * The hosts (alive when heard from within `aliveWithinS` seconds, default 90, and not
 * left), their trials, keeps, spend and claims in force, and each hardware class's
 * incumbent.
 */
export async function status(
  db: SwarmConnection,
  options: { aliveWithinS?: number } = {},
): Promise<SwarmStatus> {
  const rows = await db.query<{
    name: string;
    hardware_class: string;
    stages: string[];
    slots: number;
    last_seen: Date;
    left_at: Date | null;
    left: boolean;
    alive: boolean;
    trials: string;
    keeps: string;
    cost_usd: number;
    in_flight: string;
  }>(
    "status",
    `SELECT h.name, h.hardware_class, h.stages, h.slots, h.last_seen, l.left_at,
            coalesce(l.left_at >= h.last_seen, false) AS left,
            coalesce(l.left_at < h.last_seen, true)
              AND h.last_seen > now() - make_interval(secs => $1) AS alive,
            coalesce(t.trials, 0) AS trials, coalesce(t.keeps, 0) AS keeps,
            coalesce(t.cost_usd, 0) AS cost_usd, coalesce(c.open, 0) AS in_flight
       FROM swarm.hosts h
       -- left_at came with schema v5: read through the row, so that a status run before
       -- the owner's init brings an older schema up to date still shows the hosts.
       CROSS JOIN LATERAL (SELECT (to_jsonb(h) ->> 'left_at')::timestamptz AS left_at) l
       LEFT JOIN (SELECT host, count(*) AS trials, count(*) FILTER (WHERE verdict = 'keep' AND NOT baseline) AS keeps,
                         sum(cost_usd) AS cost_usd
                    FROM swarm.trials GROUP BY host) t ON t.host = h.name
       LEFT JOIN (SELECT host, count(*) AS open FROM swarm.claims
                   WHERE released_at IS NULL AND expires_at > clock_timestamp()
                   GROUP BY host) c ON c.host = h.name
      ORDER BY h.name`,
    [options.aliveWithinS ?? 90],
  );
  const hosts = rows.map((r) => ({
    name: r.name,
    hardwareClass: r.hardware_class,
    stages: r.stages,
    slots: r.slots,
    lastSeen: r.last_seen.getTime(),
    alive: r.alive,
    left: r.left,
    leftAt: r.left ? r.left_at!.getTime() : null,
    trials: Number(r.trials),
    keeps: Number(r.keeps),
    costUsd: Number(r.cost_usd),
    inFlight: Number(r.in_flight),
  }));
  const sum = (pick: (h: HostStatus) => number) => hosts.reduce((s, h) => s + pick(h), 0);
  return {
    hosts,
    trials: sum((h) => h.trials),
    keeps: sum((h) => h.keeps),
    inFlight: sum((h) => h.inFlight),
    best: (await incumbents(db)).filter((i) => i.version > 0),
  };
}

/** One thing `swarm doctor` found wrong, by the check that found it. */
export interface SwarmProblem {
  check: string;
  detail: string;
}

/**
 * The swarm's invariants, read from the database: the line's head is a keep at its
 * commit; each class's incumbent is the best keep measured on that class; no two hosts
 * ran the same change (a host runs its own again only to confirm a win carried onto a
 * newer head). Returns what does not hold (empty: all hold).
 */
export async function doctor(db: SwarmConnection): Promise<SwarmProblem[]> {
  const problems: SwarmProblem[] = [];
  const [line] = await db.query<{
    version: string;
    commit_sha: string;
    base_commit: string;
    trial_id: string | null;
    verdict: string | null;
    t_commit: string | null;
  }>(
    "checking the line",
    `SELECT l.version, l.commit_sha, l.base_commit, l.trial_id, t.verdict, t.commit_sha AS t_commit
       FROM swarm.line l LEFT JOIN swarm.trials t ON t.id = l.trial_id`,
  );
  if (!line) problems.push({ check: "line", detail: "the swarm has no line: run swarm init" });
  else if (line.trial_id === null) {
    if (line.commit_sha !== line.base_commit)
      problems.push({ check: "line", detail: "at version 0 but not at the base commit" });
  } else if (line.verdict !== "keep" || line.t_commit !== line.commit_sha)
    problems.push({
      check: "line",
      detail: `its head (trial ${line.trial_id}) is ${line.verdict}, at ${line.t_commit}, not a keep at ${line.commit_sha}`,
    });
  const [task] = await db.query<{ goal: string }>(
    "checking the incumbents",
    "SELECT goal FROM swarm.task",
  );
  const best = task?.goal === "maximize" ? "max" : "min";
  const classes = await db.query<{
    hardware_class: string;
    metric: number | null;
    best: number | null;
  }>(
    "checking the incumbents",
    `SELECT i.hardware_class, i.metric,
            (SELECT ${best}(metric) FROM swarm.trials t
              WHERE t.hardware_class = i.hardware_class AND t.verdict = 'keep') AS best
       FROM swarm.incumbents i WHERE i.trial_id IS NOT NULL`,
  );
  for (const c of classes)
    if (c.metric !== c.best)
      problems.push({
        check: "incumbents",
        detail: `class ${c.hardware_class}'s incumbent is ${c.metric}, but its best keep is ${c.best}`,
      });
  const twice = await db.query<{ diff_hash: string; trials: string[] }>(
    "checking for changes run twice",
    `SELECT diff_hash, array_agg(host || '/' || uid ORDER BY id) AS trials FROM swarm.trials
      WHERE diff_hash IS NOT NULL AND run_ms > 0 AND verdict <> 'interrupted' AND NOT baseline
      GROUP BY diff_hash HAVING count(DISTINCT host) > 1`,
  );
  for (const t of twice)
    problems.push({
      check: "claims",
      detail: `the same change ran ${t.trials.length} times: ${t.trials.join(", ")}`,
    });
  return problems;
}
