/** Promotions across hosts, in the database: asked for once, taken by a host that can, leased. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SwarmClient } from "../../src/swarm/index.js";
import {
  hostInfo,
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
    { baseCommit: "c0", remote: "git://127.0.0.1/task.git" },
  );
  a = await swarm.host("host_a");
  b = await swarm.host("host_b");
  c = await swarm.host("host_c");
  // a and b join as hosts that can run the larger stage; c as one that cannot.
  for (const host of [a, b]) await host.join({ ...hostInfo("cpu"), stages: ["d8", "d24"] });
  sqlB = await swarm.rawSql("host_b");
});
afterAll(() => swarm?.close());

const keep = (uid: string, parent: string, commit: string) => ({
  uid,
  hardwareClass: "cpu",
  verdict: "keep" as const,
  metric: 1,
  parentCommit: parent,
  commitSha: commit,
});

describe("promotions across hosts", () => {
  it("are asked for the line's head as it is now, once per stage and version", async () => {
    expect(await a.requestPromotion("d24", 0)).toBe(true);
    expect(await b.requestPromotion("d24", 0)).toBe(false);
    expect(await a.requestPromotion("d24", 3)).toBe(false);
    expect(await a.advance(0, keep("a1", "c0", "c1"))).toMatchObject({ ok: true, version: 1 });
    // The head moved on: an old version is not asked for any more.
    expect(await b.requestPromotion("d32", 0)).toBe(false);
    expect(await b.requestPromotion("d24", 1)).toBe(true);
    const asked = await a.promotions();
    expect(asked.map((p) => [p.stage, p.version, p.commit, p.requestedBy, p.state])).toEqual([
      ["d24", 1, "c1", "host_b", "pending"],
      ["d24", 0, "c0", "host_a", "pending"],
    ]);
  });

  it("go to a host that can run the stage and stands on that head, one host each", async () => {
    expect(await a.takePromotion(["d8"], "c1", 60)).toBeNull();
    // A host that joined without the stage does not get it by naming it.
    expect(await c.takePromotion(["d8", "d24"], "c1", 60)).toBeNull();
    expect(await a.takePromotion(["d8", "d24"], "c9", 60)).toBeNull();
    const job = await a.takePromotion(["d8", "d24"], "c1", 60);
    expect(job).toEqual({ id: expect.any(Number), stage: "d24", version: 1, commit: "c1" });
    // Taken: no one else gets it while its lease runs.
    expect(await b.takePromotion(["d24"], "c1", 60)).toBeNull();
    // Only the host that holds it renews or ends it.
    expect(await b.renewPromotion(job!.id, 600)).toBe(false);
    expect(
      await b.finishPromotion(job!.id, { state: "done", transfer: { forged: true }, reason: null }),
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
    expect(await b.takePromotion(["d24"], "c1", 60)).toBeNull();
    expect(await a.finishPromotion(job!.id, { state: "failed", transfer: null, reason: "x" })).toBe(
      false,
    );
  });

  it("are handed back by a host that no longer stands on the head, and leases stay bounded", async () => {
    expect(await b.requestPromotion("d32", 1)).toBe(true);
    await b.join({ ...hostInfo("cpu"), stages: ["d8", "d24", "d32"] });
    const job = await b.takePromotion(["d32"], "c1", -5);
    expect(job).toMatchObject({ stage: "d32" });
    // A lease asked as negative is a second at least: held now, lapsing soon.
    expect(await a.takePromotion(["d32"], "c1", 60)).toBeNull();
    expect(await a.releasePromotion(job!.id)).toBe(false);
    expect(await b.releasePromotion(job!.id)).toBe(true);
    const [back] = (await a.promotions()).filter((p) => p.id === job!.id);
    expect(back).toMatchObject({ state: "pending", host: null });
  });

  it("pass to another host when the one holding them goes silent past its lease", async () => {
    const job = await b.takePromotion(["d24"], "c0", 1);
    expect(job).toMatchObject({ stage: "d24", version: 0 });
    expect(await a.takePromotion(["d24"], "c0", 60)).toBeNull();
    await new Promise((r) => setTimeout(r, 1300));
    const again = await a.takePromotion(["d24"], "c0", 60);
    expect(again?.id).toBe(job!.id);
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
