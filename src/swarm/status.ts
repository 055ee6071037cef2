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
  /** Seen within the `aliveWithinS` the status was asked with. */
  alive: boolean;
  trials: number;
  keeps: number;
  costUsd: number;
  /** Claims of this host in force now. */
  inFlight: number;
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
 * The hosts (alive when heard from within `aliveWithinS` seconds, default 90), their
 * trials, keeps, spend and claims in force, and each hardware class's incumbent.
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
    alive: boolean;
    trials: string;
    keeps: string;
    cost_usd: number;
    in_flight: string;
  }>(
    "status",
    `SELECT h.name, h.hardware_class, h.stages, h.slots, h.last_seen,
            h.last_seen > now() - make_interval(secs => $1) AS alive,
            coalesce(t.trials, 0) AS trials, coalesce(t.keeps, 0) AS keeps,
            coalesce(t.cost_usd, 0) AS cost_usd, coalesce(c.open, 0) AS in_flight
       FROM swarm.hosts h
       LEFT JOIN (SELECT host, count(*) AS trials, count(*) FILTER (WHERE verdict = 'keep') AS keeps,
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
