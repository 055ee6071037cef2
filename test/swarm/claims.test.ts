import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SwarmClient, TrialUpload } from "../../src/swarm/index.js";
import { type SwarmFixture, swarmFixture } from "./fixture.js";

let swarm: SwarmFixture;
let a: SwarmClient;
let b: SwarmClient;
beforeAll(async () => {
  swarm = await swarmFixture(["host_a", "host_b"]);
  a = await swarm.host("host_a");
  b = await swarm.host("host_b");
});
afterAll(() => swarm?.close());

const trial = (uid: string, diffHash: string, extra: Partial<TrialUpload> = {}): TrialUpload => ({
  uid,
  title: `trial ${uid}`,
  diffHash,
  hardwareClass: "cpu",
  verdict: "discard",
  metric: 1.5,
  ...extra,
});

describe("claims", () => {
  it("refuse a change another host is running, naming the host, until it is released", async () => {
    const mine = await a.claim({ diffHash: "d1" }, 60, "lr 0.02");
    expect(mine.ok).toBe(true);
    const theirs = await b.claim({ diffHash: "d1" }, 60);
    expect(theirs).toMatchObject({
      ok: false,
      reason: "claimed",
      host: "host_a",
      title: "lr 0.02",
    });
    expect(!theirs.ok && theirs.message).toMatch(/host host_a is running "lr 0.02" now/);
    expect((await b.inFlight()).map((c) => [c.host, c.diffHash])).toEqual([["host_a", "d1"]]);
    expect(mine.ok && (await b.release(mine.id))).toBe(false); // not b's to release
    expect(mine.ok && (await a.release(mine.id))).toBe(true);
    expect((await b.claim({ diffHash: "d1" }, 60)).ok).toBe(true);
  });

  it("refuse a change a finished trial made, and the same parameter values, with the trial", async () => {
    const claim = await a.claim({ diffHash: "d2", paramKey: "p2" }, 60);
    if (!claim.ok) throw new Error(claim.message);
    const recorded = await a.recordTrial(
      trial("a-2", "d2", { paramKey: "p2", verdict: "keep", runTag: "r1", localN: 7 }),
      { releaseClaim: claim.id },
    );
    expect((await a.inFlight()).some((c) => c.id === claim.id)).toBe(false);
    for (const keys of [
      { diffHash: "d2" },
      { paramKey: "p2" },
      { diffHash: "other", paramKey: "p2" },
    ]) {
      const r = await b.claim(keys, 60);
      expect(r).toMatchObject({ ok: false, reason: "tried", host: "host_a", trialId: recorded.id });
      // Named as its host knows it: run and number, not the database's row id.
      expect(!r.ok && r.message).toContain(`(host host_a's trial #7 of run r1, keep)`);
    }
  });

  it("stop blocking once their lease lapses, and cannot be renewed after", async () => {
    const short = await a.claim({ diffHash: "d3" }, 0.5);
    if (!short.ok) throw new Error(short.message);
    expect((await b.claim({ diffHash: "d3" }, 60)).ok).toBe(false);
    expect(await a.renew(short.id, 0.5)).toBe(true);
    await new Promise((r) => setTimeout(r, 700));
    expect(await a.renew(short.id, 60)).toBe(false);
    expect((await b.inFlight()).some((c) => c.id === short.id)).toBe(false);
    expect((await b.claim({ diffHash: "d3" }, 60)).ok).toBe(true);
  });

  it("let an interrupted trial's change be tried again", async () => {
    await a.recordTrial(trial("a-4", "d4", { verdict: "interrupted", metric: null }));
    expect((await b.claim({ diffHash: "d4" }, 60)).ok).toBe(true);
  });

  it("go to exactly one of many hosts claiming the same change at once", async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).claim({ diffHash: "d5" }, 60)),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
  });
});

describe("uploads", () => {
  it("land once per host-local uid: a retry answers the first id and changes nothing", async () => {
    const first = await a.recordTrial(trial("a-6", "d6", { metric: 2 }));
    const again = await a.recordTrial(trial("a-6", "d6", { metric: 999 }));
    expect(first.created).toBe(true);
    expect(again).toEqual({ id: first.id, created: false });
    const rows = (await b.history()).trials.filter((t) => t.uid === "a-6");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ host: "host_a", metric: 2, diffHash: "d6" });
  });

  it("replace an interrupted trial's record once its host's resume finishes it, and nothing else", async () => {
    const stopped = await a.recordTrial(
      trial("a-20", "d20", { verdict: "interrupted", metric: null }),
    );
    const cursor = (await b.history()).cursor;
    const finished = await a.recordTrial(trial("a-20", "d20", { verdict: "discard", metric: 0.5 }));
    expect(finished).toEqual({ id: stopped.id, created: false });
    // A reader following a cursor sees the trial again, with its end.
    const seen = (await b.history({ cursor })).trials.filter((t) => t.uid === "a-20");
    expect(seen).toMatchObject([{ id: stopped.id, verdict: "discard", metric: 0.5 }]);
    // Once finished, it stands: neither another end nor a new interruption replaces it.
    await a.recordTrial(trial("a-20", "d20", { verdict: "crash", metric: 3 }));
    await a.recordTrial(trial("a-20", "d20", { verdict: "interrupted", metric: null }));
    const rows = (await b.history()).trials.filter((t) => t.uid === "a-20" && t.host === "host_a");
    expect(rows).toMatchObject([{ verdict: "discard", metric: 0.5 }]);
  });

  it("land once when the same upload races itself on several connections", async () => {
    const ids = await Promise.all(
      Array.from({ length: 8 }, () => a.recordTrial(trial("a-7", "d7"))),
    );
    expect(new Set(ids.map((r) => r.id)).size).toBe(1);
    expect(ids.filter((r) => r.created)).toHaveLength(1);
  });

  it("are the same uid on two hosts as two trials, each its host's", async () => {
    await b.recordTrial(trial("a-6", "d8"));
    const rows = (await a.history()).trials.filter((t) => t.uid === "a-6");
    expect(rows.map((t) => t.host).sort()).toEqual(["host_a", "host_b"]);
  });

  it("come back after a cursor, with the diff hashed when only the diff is given", async () => {
    const before = await a.history();
    const diff = "diff --git a/x.py b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n";
    await a.recordTrial({
      uid: "a-9",
      diff,
      hardwareClass: "cpu",
      verdict: "crash",
      metric: null,
      finishedAt: 1_700_000_000_000,
    });
    const after = (await b.history({ cursor: before.cursor })).trials;
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ uid: "a-9", diff, finishedAt: 1_700_000_000_000 });
    expect(after[0]!.diffHash).toMatch(/^[0-9a-f]{64}$/);
    expect((await b.claim({ diffHash: after[0]!.diffHash! }, 60)).ok).toBe(false);
    const status = await b.status();
    expect(status.hosts.find((h) => h.name === "host_a")).toMatchObject({ alive: true, keeps: 1 });
    expect(status.trials).toBe(before.trials.length + 1);
  });

  it("reach a reader that follows a cursor even when an earlier id commits later", async () => {
    let page = await b.history({ withDiffs: false });
    const slow = new pg.Client({ connectionString: swarm.hostUrl("host_a") });
    await slow.connect();
    try {
      // host_a's upload takes its id, then waits before committing, while host_b's lands.
      await slow.query("BEGIN");
      await slow.query("SELECT swarm.record_trial($1, NULL)", [
        { uid: "late", hardware_class: "cpu", verdict: "discard", diff_hash: "d-late" },
      ]);
      await b.recordTrial(trial("b-quick", "d-quick"));
      page = await b.history({ cursor: page.cursor });
      expect(page.trials.map((t) => t.uid)).toEqual(["b-quick"]);
      await slow.query("COMMIT");
      const next = await b.history({ cursor: page.cursor });
      expect(next.trials.map((t) => t.uid)).toEqual(["late"]);
      expect(next.trials[0]!.id).toBeLessThan(page.trials[0]!.id);
      expect((await b.history({ cursor: next.cursor })).trials).toEqual([]);
    } finally {
      await slow.end();
    }
  });
});
