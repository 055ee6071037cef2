import type { SwarmConnection } from "./connection.js";
import { exactText, storable } from "./text.js";
import type { ClaimResult, InFlight } from "./types.js";

/** What a claim is on: the change's normalized-diff hash, its parameter-set key, or both. */
export interface ClaimKeys {
  diffHash?: string;
  paramKey?: string;
  /**
   * The uid the trial will be uploaded with. Claiming again with the same uid and keys
   * answers the claim already held, so a retry whose first attempt landed is not refused
   * by the host's own claim. Without it, such a retry is refused as "claimed".
   */
  uid?: string;
}

interface ClaimAnswer {
  ok: boolean;
  claim?: number;
  expires_at?: string;
  reason?: "tried" | "claimed";
  host?: string;
  trial?: number;
  title?: string | null;
  verdict?: string;
}

/**
 * Claims `keys` for `leaseS` seconds: granted only when no finished trial (interrupted
 * ones aside) and no claim still in force has either key. A refusal is a value naming the
 * trial or the claim that matched and its host, worded for the researcher.
 */
export async function claim(
  db: SwarmConnection,
  keys: ClaimKeys,
  leaseS: number,
  title?: string,
): Promise<ClaimResult> {
  const a = await db.call<ClaimAnswer>("claim", "claim", [
    exactText("the claim's diff hash", keys.diffHash ?? null),
    exactText("the claim's parameter key", keys.paramKey ?? null),
    leaseS,
    storable(title ?? null),
    exactText("the claim's uid", keys.uid ?? null),
  ]);
  if (a.ok) return { ok: true, id: Number(a.claim), expiresAt: Date.parse(a.expires_at!) };
  const what = a.title ? `"${a.title}"` : "the same change";
  if (a.reason === "tried") {
    // Named as its host knows it (run and number), not by the database's row id.
    const [row] = await db.query<{ run_tag: string | null; local_n: number | null }>(
      "a trial's name",
      "SELECT run_tag, local_n FROM swarm.trials WHERE id = $1",
      [Number(a.trial)],
    );
    const name =
      row?.run_tag != null && row.local_n != null
        ? `host ${a.host}'s trial #${row.local_n} of run ${row.run_tag}`
        : `host ${a.host}'s trial ${a.trial} in the swarm's database`;
    return {
      ok: false,
      reason: "tried",
      host: a.host!,
      trialId: Number(a.trial),
      title: a.title ?? null,
      message: `already tried: ${what} (${name}, ${a.verdict}) made the same change`,
    };
  }
  return {
    ok: false,
    reason: "claimed",
    host: a.host!,
    claimId: Number(a.claim),
    title: a.title ?? null,
    message: `in flight: host ${a.host} is running ${what} now (claim ${a.claim}, lease until ${a.expires_at})`,
  };
}

/**
 * Extends one of this host's claims by `leaseS` seconds from now. False when the claim is
 * released, not this host's, or already lapsed: a lapsed claim may have been taken by
 * another host, so it is claimed again rather than renewed.
 */
export async function renew(db: SwarmConnection, id: number, leaseS: number): Promise<boolean> {
  return (await db.call<{ ok: boolean }>("renew", "renew", [id, leaseS])).ok;
}

/** Releases one of this host's claims; false when it was not open or not this host's. */
export async function release(db: SwarmConnection, id: number): Promise<boolean> {
  return (await db.call<{ ok: boolean }>("release", "release", [id])).ok;
}

/**
 * This host's claims still in force on the trials `uids`, by uid: the ids a process keeps
 * in memory are lost with it, the claims are not.
 */
export async function heldClaims(
  db: SwarmConnection,
  uids: string[],
): Promise<Map<string, number>> {
  const rows = await db.query<{ id: string; uid: string }>(
    "this host's claims",
    `SELECT id, uid FROM swarm.claims
      WHERE host = session_user AND uid = ANY($1) AND released_at IS NULL
        AND expires_at > clock_timestamp()`,
    [uids],
  );
  return new Map(rows.map((r) => [r.uid, Number(r.id)]));
}

/** Every claim still in force, oldest first: what the swarm is running now, and where. */
export async function inFlight(db: SwarmConnection): Promise<InFlight[]> {
  const rows = await db.query<{
    id: string;
    host: string;
    title: string | null;
    diff_hash: string | null;
    param_key: string | null;
    claimed_at: Date;
    expires_at: Date;
  }>(
    "in flight",
    `SELECT id, host, title, diff_hash, param_key, claimed_at, expires_at FROM swarm.claims
      WHERE released_at IS NULL AND expires_at > clock_timestamp() ORDER BY id`,
  );
  return rows.map((r) => ({
    id: Number(r.id),
    host: r.host,
    title: r.title,
    diffHash: r.diff_hash,
    paramKey: r.param_key,
    claimedAt: r.claimed_at.getTime(),
    expiresAt: r.expires_at.getTime(),
  }));
}
