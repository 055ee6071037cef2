import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SwarmError } from "../../src/errors.js";
import { SwarmClient, SwarmUnreachableError, setupSql } from "../../src/swarm/index.js";
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
let sql: RawSql; // host_a speaking SQL directly, as a host that skips the client would
beforeAll(async () => {
  swarm = await swarmFixture(["host_a", "host_b"]);
  a = await swarm.host("host_a");
  b = await swarm.host("host_b");
  sql = await swarm.rawSql("host_a");
});
afterAll(() => swarm?.close());

describe("a hostile host", () => {
  it("cannot skip the version check of the compare-and-swap with a null version", async () => {
    await a.join(hostInfo("cas"));
    await b.join(hostInfo("cas"));
    const first = await b.recordTrial({
      uid: "b1",
      hardwareClass: "cas",
      verdict: "keep",
      metric: 5,
    });
    expect(await b.cas("cas", 0, first.id)).toMatchObject({ ok: true, version: 1 });
    const better = await a.recordTrial({
      uid: "a1",
      hardwareClass: "cas",
      verdict: "keep",
      metric: 1,
    });
    const { rows } = await sql("SELECT swarm.cas_incumbent('cas', NULL, $1) AS r", [better.id]);
    expect(rows[0].r).toMatchObject({ ok: false, reason: "stale", version: 1 });
    expect(await a.incumbent("cas")).toMatchObject({ version: 1, trialId: first.id });
    await a.join(hostInfo("cpu"));
    await b.join(hostInfo("cpu"));
  });

  it("cannot upload a measurement for a hardware class it did not join as", async () => {
    await a.join(hostInfo("cas"));
    await expect(
      a.recordTrial({ uid: "forged", hardwareClass: "not-mine", verdict: "keep", metric: -1000 }),
    ).rejects.toThrow(/joined as hardware class cas, not not-mine/);
    expect((await b.history()).trials.some((t) => t.uid === "forged")).toBe(false);
    await a.join(hostInfo("cpu"));
  });

  it("cannot fill the incumbents with classes that no trial ran on", async () => {
    await sql("SELECT swarm.cas_incumbent('junk', 0, 999999) AS r");
    expect((await a.incumbents()).map((i) => i.hardwareClass)).not.toContain("junk");
  });
});

describe("text the database cannot hold", () => {
  it("uploads titles, diffs and hypotheses with NUL bytes and lone surrogates", async () => {
    const r = await a.recordTrial({
      uid: "nul",
      title: "a\u0000b \ud800",
      hypothesis: "x\u0000",
      diff: "+a\u0000\n",
      hardwareClass: "cpu",
      verdict: "discard",
      metric: 1,
    });
    const [t] = (await a.history()).trials.filter((x) => x.id === r.id);
    expect(t?.title).toBe("a\ufffdb \ufffd");
    expect(t?.diff).toBe("+a\ufffd\n");
  });

  it("claims with a NUL in the title", async () => {
    expect((await a.claim({ diffHash: "nul-title" }, 60, "t\u0000")).ok).toBe(true);
  });

  it("refuses a NUL in a uid or class with a SwarmError naming the field", async () => {
    const error = await a
      .recordTrial({ uid: "u\u0000", hardwareClass: "cpu", verdict: "discard", metric: 1 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SwarmError);
    expect(error).not.toBeInstanceOf(SwarmUnreachableError);
    expect((error as Error).message).toMatch(/uid/);
  });

  it("uploads unicode and a 20 MB diff unchanged", async () => {
    const diff = `+${"日本語 ✓ 🚀 ".repeat(10)}\n`.repeat(200_000);
    const r = await a.recordTrial({
      uid: "big",
      title: "ünïcödé 🚀",
      diff,
      hardwareClass: "cpu",
      verdict: "discard",
      metric: 1,
    });
    const [t] = (await a.history()).trials.filter((x) => x.id === r.id);
    expect(t?.title).toBe("ünïcödé 🚀");
    expect(t?.diff?.length).toBe(diff.length);
  });
});

describe("a retried call whose first attempt landed", () => {
  it("compare-and-swap answers ok again, not stale", async () => {
    await a.join(hostInfo("retry"));
    const t = await a.recordTrial({
      uid: "r1",
      hardwareClass: "retry",
      verdict: "keep",
      metric: 3,
    });
    expect(await a.cas("retry", 0, t.id)).toMatchObject({ ok: true, version: 1 });
    expect(await a.cas("retry", 0, t.id)).toMatchObject({ ok: true, version: 1 });
    await a.join(hostInfo("cpu"));
  });

  it("a move of the line answers ok again, though another host's keep moved it on since", async () => {
    await swarm.owner.init(
      { taskHash: TASK_HASH, taskFile: TASK_FILE, metric: "score", goal: "minimize" },
      { baseCommit: "c0", remote: "git://127.0.0.1/task.git" },
    );
    // a's move lands, its answer lost; b builds on it; a asks again with what it knew.
    expect(await a.advance(0, lineKeep("move-a", "c0", "c1"))).toMatchObject({
      ok: true,
      version: 1,
    });
    expect(await b.advance(1, lineKeep("move-b", "c1", "c2"))).toMatchObject({
      ok: true,
      version: 2,
    });
    expect(await a.advance(0, lineKeep("move-a", "c0", "c1"))).toMatchObject({
      ok: true,
      version: 1,
    });
    // A keep that never landed is still told it is stale.
    expect(await a.advance(0, lineKeep("move-a2", "c0", "c3"))).toMatchObject({
      ok: false,
      reason: "stale",
      version: 2,
    });
    expect((await a.line())?.version).toBe(2);
  });

  it("a claim with the same uid answers the same claim, not a refusal by itself", async () => {
    const first = await a.claim({ diffHash: "retried", uid: "trial-7" }, 60);
    const again = await a.claim({ diffHash: "retried", uid: "trial-7" }, 60);
    expect(first.ok && again.ok && again.id === first.id).toBe(true);
    // Another proposal of the same change on the same host is still refused.
    expect(await a.claim({ diffHash: "retried", uid: "trial-8" }, 60)).toMatchObject({
      ok: false,
      reason: "claimed",
    });
    expect((await b.claim({ diffHash: "retried", uid: "trial-7" }, 60)).ok).toBe(false);
  });
});

describe("setupSql", () => {
  it("refuses names PostgreSQL would truncate or cannot hold, naming them", () => {
    const names = { database: "swarm", owner: "o", hostsRole: "h", hosts: ["x"] };
    expect(() => setupSql({ ...names, hosts: ["h".repeat(64)] })).toThrow(/host.*63 bytes/);
    expect(() => setupSql({ ...names, owner: "a\u0000" })).toThrow(/owner/);
    expect(() => setupSql({ ...names, hosts: ["x", "x"] })).toThrow(/twice/);
  });

  it("names on psql's command line a password for every host it creates", () => {
    const sql = setupSql({ database: "s", owner: "o", hostsRole: "h", hosts: ["a", "b", "c"] });
    const command = sql.split("\n").find((line) => line.includes("psql -v"));
    expect(command).toContain("-v owner_password=... -v host1_password=... -v host2_password=...");
    expect(command).toContain("-v host3_password=... -f setup.sql");
    expect(sql).toContain(":'host3_password'");
  });

  it("keeps hostile names inside their identifiers when psql runs it", async () => {
    const evil = "e\"; DROP ROLE swarm_owner; --\n:'x' \\! touch pwned";
    const names = { database: `d${evil}`.slice(0, 40), owner: `o${evil}`, hostsRole: `h${evil}` };
    const file = join(swarm.cluster.dir, "evil.sql");
    writeFileSync(file, setupSql({ ...names, hosts: [`x${evil}`] }));
    swarm.cluster.tool("psql", [
      ...["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", swarm.cluster.dir, "-p"],
      ...[String(swarm.cluster.port), "-U", "postgres", "-d", "postgres", "-f", file],
      ...["-v", "owner_password=p1", "-v", "host1_password=p2"],
    ]);
    const su = new pg.Client({ connectionString: swarm.cluster.superuserUrl });
    await su.connect();
    try {
      const { rows } = await su.query(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname",
        [["swarm_owner", names.owner, names.hostsRole, `x${evil}`]],
      );
      expect(rows.map((r) => r.rolname)).toEqual(
        ["swarm_owner", names.owner, names.hostsRole, `x${evil}`].sort(),
      );
      const db = await su.query("SELECT 1 FROM pg_database WHERE datname = $1", [names.database]);
      expect(db.rowCount).toBe(1);
    } finally {
      await su.end();
    }
    expect(existsSync(join(swarm.cluster.dir, "pwned"))).toBe(false);
  });
});

describe("a URL's password", () => {
  it("appears in no error, whether refused, unreachable or malformed", async () => {
    const secret = "s3cr3t:p@ss/w%rd";
    const encoded = encodeURIComponent(secret);
    const port = swarm.cluster.port;
    for (const url of [
      `postgres://host_a:${encoded}@127.0.0.1:${port}/swarm`,
      `postgres://host_a:${encoded}@127.0.0.1:1/swarm`,
      `postgres://host_a@127.0.0.1:${port}/swarm?password=${encoded}`,
      `postgres://host_a:${encoded}@127.0.0.1:notaport/swarm`,
      `postgres://host_a:${encoded}@127.0.0.1:${port}/swarm?sslmode=nonsense`,
    ]) {
      const error = await SwarmClient.connect(url, { connectTimeoutMs: 1_000 }).then(
        (c) => c.close(),
        (e: unknown) => e,
      );
      expect(error, url).toBeInstanceOf(SwarmError);
      const text = `${(error as Error).message} ${(error as Error).stack} ${JSON.stringify(error)}`;
      expect(text).not.toContain(secret);
      expect(text).not.toContain(encoded);
      expect(text).not.toContain("s3cr3t");
    }
  });
});
