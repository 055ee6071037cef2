import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Incumbent, SwarmClient } from "../../src/swarm/index.js";
import { hostInfo, type SwarmFixture, swarmFixture } from "./fixture.js";

let swarm: SwarmFixture;
let a: SwarmClient;
let b: SwarmClient;
beforeAll(async () => {
  swarm = await swarmFixture(["host_a", "host_b"]);
  a = await swarm.host("host_a", "h100");
  b = await swarm.host("host_b", "h100");
});
afterAll(() => swarm?.close());

let uid = 0;
async function keep(client: SwarmClient, metric: number, hardwareClass = "h100"): Promise<number> {
  uid++;
  const r = await client.recordTrial({
    uid: `t${uid}`,
    diffHash: `d${uid}`,
    commitSha: `c${uid}`,
    hardwareClass,
    verdict: "keep",
    metric,
  });
  return r.id;
}

describe("the incumbent's compare-and-swap", () => {
  it("takes any recorded keep for a class without one, then only a better one", async () => {
    expect(await a.incumbent("h100")).toMatchObject({ version: 0, trialId: null });
    const first = await keep(a, 3.0);
    expect(await a.cas("h100", 0, first)).toEqual({ ok: true, version: 1 });
    expect(await b.incumbent("h100")).toMatchObject({
      version: 1,
      trialId: first,
      metric: 3,
      host: "host_a",
      commitSha: `c${uid}`,
    });
    const worse = await keep(b, 3.5);
    expect(await b.cas("h100", 1, worse)).toMatchObject({
      ok: false,
      reason: "not-better",
      version: 1,
    });
    const equal = await keep(b, 3.0);
    expect(await b.cas("h100", 1, equal)).toMatchObject({ ok: false, reason: "not-better" });
    const better = await keep(b, 2.5);
    expect(await b.cas("h100", 0, better)).toMatchObject({
      ok: false,
      reason: "stale",
      version: 1,
    });
    expect(await b.cas("h100", 1, better)).toEqual({ ok: true, version: 2 });
  });

  it("refuses a trial that is not a recorded keep with a metric on that class", async () => {
    const v = (await a.incumbent("h100")).version;
    const discard = (
      await a.recordTrial({ uid: "x1", hardwareClass: "h100", verdict: "discard", metric: 0.1 })
    ).id;
    const noMetric = (
      await a.recordTrial({ uid: "x2", hardwareClass: "h100", verdict: "keep", metric: null })
    ).id;
    await a.join(hostInfo("rtx4090"));
    const elsewhere = await keep(a, 0.1, "rtx4090");
    await a.join(hostInfo("h100"));
    expect(await a.cas("h100", v, discard)).toMatchObject({ ok: false, reason: "not-keep" });
    expect(await a.cas("h100", v, noMetric)).toMatchObject({ ok: false, reason: "no-metric" });
    expect(await a.cas("h100", v, elsewhere)).toMatchObject({ ok: false, reason: "other-class" });
    expect(await a.cas("h100", v, 999_999)).toMatchObject({ ok: false, reason: "unknown-trial" });
    expect((await a.incumbent("h100")).version).toBe(v);
    // Each class has its own incumbent.
    expect(await a.cas("rtx4090", 0, elsewhere)).toEqual({ ok: true, version: 1 });
  });

  it("lets exactly one of 20 connections racing at one version win, and only ever improves", async () => {
    const clients = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const c = await SwarmClient.connect(swarm.hostUrl(i % 2 ? "host_a" : "host_b"), {
          poolSize: 1,
        });
        await c.join(hostInfo("h100"));
        return c;
      }),
    );
    try {
      const start = await a.incumbent("h100");
      const trials = await Promise.all(clients.map((c, i) => keep(c, 2 - (i + 1) * 0.01)));
      const round = await Promise.all(
        clients.map((c, i) => c.cas("h100", start.version, trials[i]!)),
      );
      expect(round.filter((r) => r.ok)).toHaveLength(1);
      expect(round.filter((r) => !r.ok && r.reason === "stale")).toHaveLength(19);

      // Then each host tries again from what it reads, as hosts do, until none can win.
      const wins: { version: number; metric: number }[] = [];
      await Promise.all(
        clients.map(async (c, i) => {
          const metric = 2 - (i + 1) * 0.01;
          for (;;) {
            const now = await c.incumbent("h100");
            if (now.metric !== null && now.metric <= metric) return;
            const r = await c.cas("h100", now.version, trials[i]!);
            if (r.ok) wins.push({ version: r.version, metric });
          }
        }),
      );
      const end = await a.incumbent("h100");
      expect(end.metric).toBeCloseTo(2 - 20 * 0.01);
      wins.sort((x, y) => x.version - y.version);
      for (let k = 1; k < wins.length; k++)
        expect(wins[k]!.metric).toBeLessThan(wins[k - 1]!.metric);
      expect(new Set(wins.map((w) => w.version)).size).toBe(wins.length);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});

describe("the incumbent watch", () => {
  it("delivers a new incumbent to another connection within 2 s, by NOTIFY", async () => {
    const seen: Incumbent[] = [];
    const known = Object.fromEntries(
      (await b.incumbents()).map((i) => [i.hardwareClass, i.version]),
    );
    const watch = await b.watchIncumbents((i) => seen.push(i), {
      known,
      safetyPollMs: 60_000,
      pollMs: 60_000,
    });
    try {
      expect(watch.listening).toBe(true);
      const now = await a.incumbent("h100");
      const trial = await keep(a, now.metric! - 0.5);
      const started = Date.now();
      expect(await a.cas("h100", now.version, trial)).toMatchObject({ ok: true });
      await until(() => seen.length > 0, 2_000);
      // With polling off (60 s), only the notification can have brought it this soon.
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(seen).toEqual([
        expect.objectContaining({
          hardwareClass: "h100",
          version: now.version + 1,
          trialId: trial,
        }),
      ]);
    } finally {
      await watch.close();
    }
  });

  it("still delivers within 2 s after its listening connection is cut, and listens again", async () => {
    const seen: Incumbent[] = [];
    const known = Object.fromEntries(
      (await b.incumbents()).map((i) => [i.hardwareClass, i.version]),
    );
    const watch = await b.watchIncumbents((i) => seen.push(i), { known, pollMs: 200 });
    try {
      await swarm.cluster.admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND usename = 'host_b'",
      );
      await until(() => !watch.listening, 2_000);
      const now = await a.incumbent("h100");
      const trial = await keep(a, now.metric! - 0.5);
      expect(await a.cas("h100", now.version, trial)).toMatchObject({ ok: true });
      await until(() => seen.length > 0, 2_000);
      expect(seen[0]).toMatchObject({ version: now.version + 1 });
      await until(() => watch.listening, 5_000);
    } finally {
      await watch.close();
    }
  });

  it("is only a wake-up: a forged notification reports nothing that is not in the table", async () => {
    const seen: Incumbent[] = [];
    const known = Object.fromEntries(
      (await b.incumbents()).map((i) => [i.hardwareClass, i.version]),
    );
    const watch = await b.watchIncumbents((i) => seen.push(i), { known });
    const forger = new pg.Client({ connectionString: swarm.hostUrl("host_a") });
    try {
      await forger.connect();
      await forger.query(`NOTIFY autoresearch_swarm_incumbent, '{"class":"h100","version":999}'`);
      await new Promise((r) => setTimeout(r, 500));
      expect(seen).toEqual([]);
    } finally {
      await forger.end();
      await watch.close();
    }
  });
});

async function until(condition: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
