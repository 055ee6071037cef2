/** Promotions across hosts, in the database: asked for once, taken by a host that can, leased. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeldPromotions, LEASE_LOST } from "../../src/orchestrator/swarm.js";
import type { SwarmClient } from "../../src/swarm/index.js";
import {
  hostInfo,
  lineKeep,
  type RawSql,
  type SwarmFixture,
  swarmFixture,
  TASK_FILE,
  TASK_HASH,
} from "./fixture.js";

let swarm: SwarmFixture;
let a: SwarmClient;
let b: SwarmClient;
let c: SwarmClient;
let sqlB: RawSql;
beforeAll(async () => {
  swarm = await swarmFixture(["host_a", "host_b", "host_c"]);
  // A line, as `swarm init` records it from a task's checkout.
  await swarm.owner.init(
    { taskHash: TASK_HASH, taskFile: TASK_FILE, metric: "score", goal: "minimize" },
    {
      baseCommit: "c0",
      remote: "git://127.0.0.1/task.git",
      promotion: { stage: "d24", every: 2 },
    },
  );
  a = await swarm.host("host_a");
  b = await swarm.host("host_b");
  c = await swarm.host("host_c");
  // a and b join as hosts that can run the larger stage; c as one that cannot.
  for (const host of [a, b]) await host.join({ ...hostInfo("cpu"), stages: ["d8", "d24"] });
  sqlB = await swarm.rawSql("host_b");
});
afterAll(() => swarm?.close());

describe("promotions across hosts", () => {
  it("are asked for the line's head as it is now, at the task's stage and versions, once", async () => {
    // The base is nothing to promote; version 1 is not a multiple of promote_every (2).
    expect(await a.requestPromotion("d24", 0)).toBe(false);
    expect(await a.advance(0, lineKeep("a1", "c0", "c1"))).toMatchObject({ ok: true, version: 1 });
    expect(await a.requestPromotion("d24", 1)).toBe(false);
    expect(await b.advance(1, lineKeep("b1", "c1", "c2"))).toMatchObject({ ok: true, version: 2 });
    expect(await a.requestPromotion("d32", 2)).toBe(false);
    expect(await a.requestPromotion("d24", 4)).toBe(false);
    expect(await a.requestPromotion("d24", 2)).toBe(true);
    expect(await b.requestPromotion("d24", 2)).toBe(false);
    expect(await a.advance(2, lineKeep("a2", "c2", "c3"))).toMatchObject({ ok: true, version: 3 });
    // The head moved on: an old version is not asked for any more.
    expect(await b.requestPromotion("d24", 2)).toBe(false);
    const asked = await a.promotions();
    expect(asked.map((p) => [p.stage, p.version, p.commit, p.requestedBy, p.state])).toEqual([
      ["d24", 2, "c2", "host_a", "pending"],
    ]);
  });

  it("go to a host that can run the stage and stands on that head, one host each", async () => {
    expect(await a.takePromotion(["d8"], "c2", 60)).toBeNull();
    // A host that joined without the stage does not get it by naming it.
    expect(await c.takePromotion(["d8", "d24"], "c2", 60)).toBeNull();
    expect(await a.takePromotion(["d8", "d24"], "c9", 60)).toBeNull();
    const job = await a.takePromotion(["d8", "d24"], "c2", 60);
    expect(job).toEqual({ id: expect.any(Number), stage: "d24", version: 2, commit: "c2" });
    // Taken: no one else gets it while its lease runs.
    expect(await b.takePromotion(["d24"], "c2", 60)).toBeNull();
    // Only the host that holds it renews or ends it.
    expect(await b.renewPromotion(job!.id, 600)).toBe(false);
    expect(
      await b.finishPromotion(job!.id, { state: "done", transfer: { rows: [] }, reason: null }),
    ).toBe(false);
    await expect(
      sqlB("UPDATE swarm.promotions SET state = 'done' WHERE id = $1", [job!.id]),
    ).rejects.toThrow(/permission denied/);
    expect(await a.renewPromotion(job!.id, 60)).toBe(true);
    // What every host reads is a table with rows, not anything a host sends.
    await expect(
      a.finishPromotion(job!.id, { state: "done", transfer: { rows: "none" }, reason: null }),
    ).rejects.toThrow(/records a transfer table with rows/);
    const table = { metric: "score", stacked: 0.01, rows: [] };
    expect(await a.finishPromotion(job!.id, { state: "done", transfer: table, reason: null })).toBe(
      true,
    );
    const [done] = await b.promotions();
    expect(done).toMatchObject({ state: "done", host: "host_a", transfer: table });
    // Ended: not taken again, nor ended twice.
    expect(await b.takePromotion(["d24"], "c2", 60)).toBeNull();
    expect(await a.finishPromotion(job!.id, { state: "failed", transfer: null, reason: "x" })).toBe(
      false,
    );
  });

  it("are handed back by a host that no longer stands on the head, and leases stay bounded", async () => {
    expect(await b.advance(3, lineKeep("b2", "c3", "c4"))).toMatchObject({ ok: true, version: 4 });
    expect(await b.requestPromotion("d24", 4)).toBe(true);
    const job = await b.takePromotion(["d24"], "c4", -5);
    expect(job).toMatchObject({ stage: "d24", version: 4 });
    // A lease asked as negative is a second at least: held now.
    expect(await a.takePromotion(["d24"], "c4", 60)).toBeNull();
    expect(await a.releasePromotion(job!.id)).toBe(false);
    expect(await b.releasePromotion(job!.id)).toBe(true);
    const [back] = await a.promotions();
    expect(back).toMatchObject({ id: job!.id, state: "pending", host: null });
  });

  it("pass to another host when the one holding them goes silent past its lease", async () => {
    const job = await b.takePromotion(["d24"], "c4", 1);
    expect(job).toMatchObject({ stage: "d24", version: 4 });
    expect(await a.takePromotion(["d24"], "c4", 60)).toBeNull();
    await new Promise((r) => setTimeout(r, 1300));
    expect((await a.promotions())[0]).toMatchObject({ state: "running", leaseLapsed: true });
    const again = await a.takePromotion(["d24"], "c4", 60);
    expect(again?.id).toBe(job!.id);
    // The silent host, back, learns it lost the lease when it renews: its promotion stops.
    const held = new HeldPromotions();
    const stop = held.take(job!.id);
    expect(await held.renew((id) => b.renewPromotion(id, 60))).toEqual([job!.id]);
    expect(stop.aborted).toBe(true);
    expect(stop.reason).toBe(LEASE_LOST);
    expect(held.signal(job!.id).aborted).toBe(true);
    // The new holder's renewal goes through, and its promotion runs on.
    const holding = new HeldPromotions();
    const runs = holding.take(again!.id);
    expect(await holding.renew((id) => a.renewPromotion(id, 60))).toEqual([]);
    expect(runs.aborted).toBe(false);
    // Ended while its renewal was on the way: the refusal that follows stops nothing.
    const ended = holding.take(job!.id + 1000);
    const refused = holding.renew(async (id) => {
      holding.drop(id);
      return false;
    });
    expect(await refused).toEqual([]);
    expect(ended.aborted).toBe(false);
    // The silent host's late answer changes nothing.
    expect(
      await b.finishPromotion(job!.id, { state: "done", transfer: { rows: [] }, reason: null }),
    ).toBe(false);
    const wrong = await a
      .finishPromotion(again!.id, { state: "running" as "done", transfer: null, reason: null })
      .catch((e: Error) => e.message);
    expect(wrong).toMatch(/ends as done or failed/);
  });
});
