import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SwarmClient } from "../../src/swarm/index.js";
import { type RawSql, type SwarmFixture, swarmFixture } from "./fixture.js";

let swarm: SwarmFixture;
let a: SwarmClient;
let b: SwarmClient;
let sql: RawSql; // host_a speaking SQL directly, as a host that skips the client would
let bTrial: number;
let aKeep: number;
beforeAll(async () => {
  swarm = await swarmFixture(["host_a", "host_b", "host_c"]);
  a = await swarm.host("host_a");
  b = await swarm.host("host_b");
  bTrial = (await b.recordTrial({ uid: "b1", hardwareClass: "cpu", verdict: "keep", metric: 1 }))
    .id;
  expect(await b.cas("cpu", 0, bTrial)).toEqual({ ok: true, version: 1 });
  aKeep = (await a.recordTrial({ uid: "a1", hardwareClass: "cpu", verdict: "keep", metric: 5 })).id;
  sql = await swarm.rawSql("host_a");
});
afterAll(() => swarm?.close());

describe("a host's role", () => {
  it("reads everything", async () => {
    const { rows } = await sql("SELECT host FROM swarm.trials ORDER BY id");
    expect(rows.map((r) => r.host)).toEqual(["host_b", "host_a"]);
  });

  it("cannot write another host's trial, nor its own, in the table", async () => {
    await expect(
      sql(`INSERT INTO swarm.trials (host, uid, hardware_class, verdict, metric)
           VALUES ('host_b', 'forged', 'cpu', 'keep', 0)`),
    ).rejects.toThrow(/permission denied for table trials/);
    await expect(sql("UPDATE swarm.trials SET metric = 0 WHERE id = $1", [bTrial])).rejects.toThrow(
      /permission denied/,
    );
    await expect(sql("UPDATE swarm.trials SET metric = 0 WHERE id = $1", [aKeep])).rejects.toThrow(
      /permission denied/,
    );
    await expect(sql("DELETE FROM swarm.trials")).rejects.toThrow(/permission denied/);
    await expect(sql("TRUNCATE swarm.claims")).rejects.toThrow(/permission denied/);
    // Through the function, a trial is always the caller's, whatever the payload says.
    const { rows } = await sql("SELECT swarm.record_trial($1, NULL) AS r", [
      { uid: "forged", host: "host_b", hardware_class: "cpu", verdict: "discard" },
    ]);
    const [row] = (await sql("SELECT host FROM swarm.trials WHERE id = $1", [rows[0].r.id])).rows;
    expect(row.host).toBe("host_a");
  });

  it("cannot release, renew or end another host's claim", async () => {
    const claim = await b.claim({ diffHash: "b-claim" }, 60);
    if (!claim.ok) throw new Error(claim.message);
    expect(await a.release(claim.id)).toBe(false);
    expect(await a.renew(claim.id, 3600)).toBe(false);
    await expect(sql("UPDATE swarm.claims SET released_at = now()")).rejects.toThrow(
      /permission denied/,
    );
    expect((await a.inFlight()).map((c) => c.id)).toContain(claim.id);
  });

  it("cannot move the incumbent in its table", async () => {
    await expect(
      sql("UPDATE swarm.incumbents SET trial_id = $1, metric = 5, version = version + 1", [aKeep]),
    ).rejects.toThrow(/permission denied for table incumbents/);
    await expect(
      sql("INSERT INTO swarm.incumbents (hardware_class, version) VALUES ('gpu', 1)"),
    ).rejects.toThrow(/permission denied/);
    expect(await a.incumbent("cpu")).toMatchObject({ version: 1, trialId: bTrial });
  });

  it("cannot compare-and-swap to a trial whose recorded result does not beat the incumbent", async () => {
    expect(await a.cas("cpu", 1, aKeep)).toMatchObject({
      ok: false,
      reason: "not-better",
      version: 1,
    });
    expect(await a.incumbent("cpu")).toMatchObject({ version: 1, trialId: bTrial, metric: 1 });
  });

  it("cannot make objects in the swarm's schema nor call the functions' helpers", async () => {
    await expect(sql("CREATE TABLE swarm.mine (x int)")).rejects.toThrow(/permission denied/);
    await expect(sql("SELECT swarm.lock_keys('x', NULL)")).rejects.toThrow(/permission denied/);
  });

  it("cannot take part before it joins, nor connect without the hosts' role", async () => {
    const c = new pg.Client({ connectionString: swarm.hostUrl("host_c") });
    await c.connect();
    try {
      await expect(c.query("SELECT swarm.claim('x', NULL, 60, NULL, NULL)")).rejects.toThrow(
        /host_c has not joined/,
      );
    } finally {
      await c.end();
    }
    await swarm.cluster.admin("CREATE ROLE stranger LOGIN PASSWORD 'stranger-pw'");
    const stranger = new pg.Client({
      connectionString: swarm.cluster.url("stranger", "stranger-pw", swarm.database),
    });
    await expect(stranger.connect()).rejects.toThrow(/permission denied for database/);
  });
});
