import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SwarmError } from "../../src/errors.js";
import { MIGRATIONS, SwarmClient } from "../../src/swarm/index.js";
import { runCli, tempDir } from "../helpers.js";
import { hostInfo, type SwarmFixture, swarmFixture, TASK_FILE, TASK_HASH } from "./fixture.js";

let swarm: SwarmFixture;
beforeAll(async () => {
  swarm = await swarmFixture(["host_a", "host_b"]);
});
afterAll(() => swarm?.close());

async function tables(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ d: string }>(
    `SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY table_name, ordinal_position) AS d
       FROM information_schema.columns WHERE table_schema = 'swarm'`,
  );
  await client.end();
  return rows[0]!.d;
}

describe("the swarm's schema", () => {
  it("is created once: init again, and from several clients at once, changes nothing", async () => {
    const task = {
      taskHash: TASK_HASH,
      taskFile: TASK_FILE,
      metric: "score",
      goal: "minimize" as const,
    };
    const before = await tables(swarm.ownerUrl);
    expect(before).toContain("trials.diff_hash:text");
    const again = await Promise.all(
      [1, 2, 3].map(async () => {
        const c = await SwarmClient.connect(swarm.ownerUrl);
        try {
          return await c.init(task, { hostsRole: "swarm_hosts" });
        } finally {
          await c.close();
        }
      }),
    );
    expect(again).toEqual([1, 2, 3].map(() => ({ applied: [], taskRecorded: false })));
    expect(await tables(swarm.ownerUrl)).toBe(before);
    const versions = await swarm.cluster.tool("psql", [
      "-X",
      "-At",
      "-h",
      swarm.cluster.dir,
      "-p",
      String(swarm.cluster.port),
      "-U",
      "postgres",
      "-d",
      swarm.database,
      "-c",
      "SELECT string_agg(version::text, ',') FROM swarm.migrations",
    ]);
    expect(versions.trim()).toBe(MIGRATIONS.map((_, i) => i + 1).join(","));
  });

  it("refuses init with another task, naming the lines that differ", async () => {
    const error = await swarm.owner
      .init({
        taskHash: "other",
        taskFile: TASK_FILE.replace("minimize", "maximize"),
        metric: "score",
        goal: "maximize",
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SwarmError);
    expect((error as Error).message).toContain("- metric: { name: score, goal: minimize }");
    expect((error as Error).message).toContain("+ metric: { name: score, goal: maximize }");
    expect((await swarm.owner.task()).taskHash).toBe(TASK_HASH);
  });

  it("refuses a host whose task file differs, and names the difference", async () => {
    const client = await SwarmClient.connect(swarm.hostUrl("host_b"));
    try {
      const info = {
        ...hostInfo("cpu"),
        taskHash: "edited",
        taskFile: `${TASK_FILE}budget: 60s\n`,
      };
      const error = await client.join(info).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SwarmError);
      expect((error as Error).message).toMatch(/differs from the one of the swarm/);
      expect((error as Error).message).toContain("+ budget: 60s");
      // The database refuses it too, for a host that skips the client's check.
      await expect(
        new Promise((resolve, reject) => {
          const raw = new pg.Client({ connectionString: swarm.hostUrl("host_b") });
          raw
            .connect()
            .then(() => raw.query("SELECT swarm.join_host('edited', 'cpu', '{}', 1)"))
            .then(resolve, reject)
            .finally(() => raw.end());
        }),
      ).rejects.toThrow(/differs from the swarm's/);
      expect((await swarm.owner.status()).hosts.map((h) => h.name)).not.toContain("host_b");
      expect(await client.join(hostInfo("cpu"))).toBe("host_b");
      expect((await swarm.owner.status()).hosts.map((h) => h.name)).toContain("host_b");
    } finally {
      await client.close();
    }
  });

  it("tells a host with no password so at once, and exits", async () => {
    const url = new URL(swarm.hostUrl("host_a"));
    url.password = "";
    const env = { PGPASSWORD: "", PGPASSFILE: join(tempDir(), "none"), HOME: tempDir() };
    const started = Date.now();
    const r = await runCli(["swarm", "status", "--database", url.toString()], { env });
    expect(r.code, r.stderr).toBe(9);
    expect(r.stderr).toMatch(/no password given; give the role's password in PGPASSWORD/);
    // Not held until the server's authentication timeout (a minute).
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it("says a database without the swarm has no task yet, rather than a missing relation", async () => {
    const client = await SwarmClient.connect(swarm.cluster.superuserUrl);
    try {
      await expect(client.task()).rejects.toThrow(
        /has no task yet: run `autoresearch swarm init` there first/,
      );
      await expect(client.task()).rejects.not.toThrow(
        swarm.cluster.superuserUrl.split(":")[2]!.split("@")[0]!,
      );
      // init tells a database without the schema from one that stopped answering.
      expect(await client.hasSchema()).toBe(false);
      expect(await swarm.owner.hasSchema()).toBe(true);
    } finally {
      await client.close();
    }
  });
});
