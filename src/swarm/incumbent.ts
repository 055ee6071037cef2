import type { Queryable, SwarmConnection } from "./connection.js";
import type { CasRefusal, CasResult, Incumbent } from "./types.js";

/** The channel `cas_incumbent` notifies on; its payload is only a wake-up. */
export const INCUMBENT_CHANNEL = "autoresearch_swarm_incumbent";

interface IncumbentRow {
  hardware_class: string;
  version: string;
  trial_id: string | null;
  commit_sha: string | null;
  metric: number | null;
  host: string | null;
  updated_at: Date;
}

const SELECT = `SELECT hardware_class, version, trial_id, commit_sha, metric, host, updated_at
                  FROM swarm.incumbents`;

/** Every hardware class's incumbent, by class name. */
export async function incumbents(db: Queryable): Promise<Incumbent[]> {
  const rows = await db.query<IncumbentRow>("incumbents", `${SELECT} ORDER BY hardware_class`);
  return rows.map(fromRow);
}

/** The incumbent of `hardwareClass`: version 0 with no trial when the class has none yet. */
export async function incumbent(db: Queryable, hardwareClass: string): Promise<Incumbent> {
  const [row] = await db.query<IncumbentRow>("incumbent", `${SELECT} WHERE hardware_class = $1`, [
    hardwareClass,
  ]);
  if (row) return fromRow(row);
  return {
    hardwareClass,
    version: 0,
    trialId: null,
    commitSha: null,
    metric: null,
    host: null,
    updatedAt: 0,
  };
}

const WHY: Record<CasRefusal, string> = {
  stale: "another host moved the incumbent first",
  "unknown-trial": "no such trial in the swarm",
  "other-class": "the trial ran on another hardware class",
  "not-keep": "the trial's recorded verdict is not keep",
  "no-metric": "the trial has no recorded metric",
  "not-better": "the trial's recorded metric does not beat the incumbent's",
};

/**
 * Moves `hardwareClass`'s incumbent to trial `trialId` if and only if the incumbent is
 * still at `expectedVersion` and the trial, as recorded in the swarm, is a keep on that
 * class whose metric beats the incumbent's (any keep, for a class with none yet). Other
 * hosts are told at once (NOTIFY). A refusal is a value with the version now, so the
 * caller can read the new incumbent and judge again.
 */
export async function cas(
  db: SwarmConnection,
  hardwareClass: string,
  expectedVersion: number,
  trialId: number,
): Promise<CasResult> {
  const a = await db.call<{
    ok: boolean;
    version: number;
    reason?: CasRefusal;
    incumbent_metric?: number;
  }>("compare-and-swap of the incumbent", "cas_incumbent", [
    hardwareClass,
    expectedVersion,
    trialId,
  ]);
  const version = Number(a.version);
  if (a.ok) return { ok: true, version };
  const reason = a.reason!;
  const extra =
    reason === "stale"
      ? ` (version ${version}, not ${expectedVersion})`
      : reason === "not-better"
        ? ` (${a.incumbent_metric})`
        : "";
  return { ok: false, reason, version, message: `${WHY[reason]}${extra}` };
}

function fromRow(r: IncumbentRow): Incumbent {
  return {
    hardwareClass: r.hardware_class,
    version: Number(r.version),
    trialId: r.trial_id === null ? null : Number(r.trial_id),
    commitSha: r.commit_sha,
    metric: r.metric,
    host: r.host,
    updatedAt: r.updated_at.getTime(),
  };
}
