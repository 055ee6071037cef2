/**
 * A host that ends its run cleanly (its trials done, or Ctrl-C) says it left: status shows
 * it gone at once, not alive until its heartbeat ages out (90 s); a host that joins again
 * is alive; a killed host still shows alive until then. A database at schema v4 takes
 * hosts of this code once its owner runs init again.
 */
import pg from "pg";
import { afterAll, expect, it } from "vitest";
import { HOST_FUNCTIONS, NEWEST_HOST_FUNCTION } from "../../src/swarm/functions.js";
import { type HostStatus, hostState, MIGRATIONS, SwarmClient } from "../../src/swarm/index.js";
import { PROMOTION_FUNCTIONS } from "../../src/swarm/promotions.js";
import { QUADRATIC_YAML, runCli, startCli, waitFor } from "../helpers.js";
import {
  hostInfo,
  initSwarmTask,
  type SwarmFixture,
  swarmFixture,
  TASK_FILE,
  TASK_HASH,
} from "./fixture.js";

const swarms: SwarmFixture[] = [];
afterAll(async () => {
  for (const s of swarms) await s.close();
});

async function hostOf(swarm: SwarmFixture, name: string, aliveWithinS?: number) {
  const status = await swarm.owner.status(aliveWithinS === undefined ? {} : { aliveWithinS });
  return status.hosts.find((h) => h.name === name);
}

/** The CLI as a child process, and the exit code it will end with. */
function startHost(args: string[], cwd: string, env: Record<string, string>) {
  const child = startCli(args, cwd, env);
  const code = new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  return { child, code };
}

it("a run that ends or is stopped leaves at once; one that joins again is alive; a killed one ages out", async () => {
  const swarm = await swarmFixture(["a"], { init: false });
  swarms.push(swarm);
  const yaml = [...QUADRATIC_YAML, "judge: { policy: greedy }"].join("\n");
  const task = await initSwarmTask(swarm, { yaml });
  expect(task.init.code, task.init.stderr).toBe(0);
  expect(task.init.stdout).toMatch(
    new RegExp(`schema versions ${MIGRATIONS.map((_, i) => i + 1).join(", ")} applied`),
  );
  const dir = task.clone("a");
  const { url, env } = task.login("a");
  const host = (args: string[], sleepS: number) =>
    startHost([...args, ...(args[0] === "run" ? ["--swarm", url] : [])], dir, {
      ...env,
      TEST_SLEEP_S: String(sleepS),
    });
  const joined = async (run: ReturnType<typeof host>) => {
    await waitFor(() => /swarm: host a \(cpu\) joined/.test(run.child.out), 60_000, "the join");
    return hostOf(swarm, "a");
  };

  // A run that reaches --max-trials.
  const first = host(
    ["run", "--tag", "r", "--max-trials", "2", "--lookahead", "0", "--hardware-class", "cpu"],
    1,
  );
  expect(await joined(first)).toMatchObject({ alive: true, left: false, leftAt: null });
  expect(await first.code, first.child.out).toBe(0);
  const ended = Date.now();
  const after = (await hostOf(swarm, "a"))!;
  expect(after).toMatchObject({ alive: false, left: true });
  // At once, well inside the 90 s a heartbeat takes to age out.
  expect(Math.abs(after.leftAt! - ended)).toBeLessThan(10_000);
  const shown = await runCli(["swarm", "status", "--database", swarm.ownerUrl]);
  expect(shown.stderr).toBe("");
  expect(shown.stdout).toMatch(/\n {2}a +left \d+s ago +cpu /);
  const json = JSON.parse(
    (await runCli(["swarm", "status", "--json", "--database", swarm.ownerUrl])).stdout,
  ) as { hosts: HostStatus[] };
  expect(json.hosts[0]).toMatchObject({ name: "a", alive: false, left: true });

  // Joins again (resume), is alive, and leaves again when stopped with Ctrl-C mid-trial.
  const again = host(["resume", "--tag", "r", "--max-trials", "4"], 30);
  expect(await joined(again)).toMatchObject({ alive: true, left: false, leftAt: null });
  await waitFor(() => /replicate \d+ running/.test(again.child.out), 60_000, "a replicate");
  again.child.kill("SIGINT");
  expect(await again.code, again.child.out).toBe(130);
  expect(await hostOf(swarm, "a")).toMatchObject({ alive: false, left: true });

  // Killed outright: nothing says it left, so it shows alive until its last sign ages out.
  const killed = host(["resume", "--tag", "r", "--max-trials", "4"], 30);
  expect(await joined(killed)).toMatchObject({ alive: true, left: false });
  killed.child.kill("SIGKILL");
  await killed.code;
  expect(await hostOf(swarm, "a")).toMatchObject({ alive: true, left: false, leftAt: null });
  const aged = (await hostOf(swarm, "a", 0.001))!;
  expect(aged).toMatchObject({ alive: false, left: false });
  expect(hostState(aged)).toBe("silent");
}, 240_000);

it("a database at schema v4 takes this code's hosts once init runs again; leave marks the caller only", async () => {
  const swarm = await swarmFixture(["old", "new", "never"], { init: false });
  swarms.push(swarm);
  // The schema as autoresearch made it before v5, with that version's grants.
  const owner = new pg.Client({ connectionString: swarm.ownerUrl });
  await owner.connect();
  try {
    await owner.query("BEGIN");
    await owner.query(`CREATE SCHEMA swarm;
      CREATE TABLE swarm.migrations (
        version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    for (const [i, sql] of MIGRATIONS.slice(0, 4).entries()) {
      await owner.query(sql);
      await owner.query("INSERT INTO swarm.migrations (version) VALUES ($1)", [i + 1]);
    }
    await owner.query(
      "INSERT INTO swarm.task (task_hash, task_file, metric, goal) VALUES ($1, $2, 'score', 'minimize')",
      [TASK_HASH, TASK_FILE],
    );
    const v4 = [...HOST_FUNCTIONS, ...PROMOTION_FUNCTIONS].filter(
      (f) => f !== NEWEST_HOST_FUNCTION,
    );
    await owner.query(`GRANT USAGE ON SCHEMA swarm TO swarm_hosts;
      GRANT SELECT ON ALL TABLES IN SCHEMA swarm TO swarm_hosts;
      GRANT EXECUTE ON FUNCTION ${v4.join(", ")} TO swarm_hosts`);
    await owner.query("COMMIT");
  } finally {
    await owner.end();
  }
  // A host of the older code joined then (as SQL: the client of this code would refuse).
  const oldClient = new pg.Client({ connectionString: swarm.hostUrl("old") });
  oldClient.on("error", () => undefined);
  await oldClient.connect();
  const old = (text: string, params: unknown[] = []) => oldClient.query(text, params);
  await old("SELECT swarm.join_host($1, 'cpu', '{}', 1)", [TASK_HASH]);
  // Status of this code reads the older schema.
  expect(await hostOf(swarm, "old")).toMatchObject({ alive: true, left: false, leftAt: null });

  const fresh = await SwarmClient.connect(swarm.hostUrl("new"));
  const task = {
    taskHash: TASK_HASH,
    taskFile: TASK_FILE,
    metric: "score",
    goal: "minimize" as const,
  };
  try {
    await expect(fresh.join(hostInfo("cpu"))).rejects.toThrow(
      `has schema version 4, older than this autoresearch's ${MIGRATIONS.length}: its owner runs \`autoresearch swarm init\` again`,
    );
    // init without the hosts' role brings the schema up but grants nothing new.
    expect((await swarm.owner.init(task)).applied).toEqual([5]);
    await expect(fresh.join(hostInfo("cpu"))).rejects.toThrow(
      /this host's role lacks the grants of the swarm's newest schema .*--hosts-role/,
    );
    expect((await swarm.owner.init(task, { hostsRole: "swarm_hosts" })).applied).toEqual([]);
    expect(await fresh.join(hostInfo("cpu"))).toBe("new");

    // The older host's row and its grants came through the migration.
    await old("SELECT swarm.heartbeat()");
    expect(await hostOf(swarm, "old")).toMatchObject({ alive: true, left: false });

    const before = Date.now();
    expect(await fresh.leave()).toBe(true);
    const gone = (await hostOf(swarm, "new"))!;
    expect(gone).toMatchObject({ alive: false, left: true });
    expect(Math.abs(gone.leftAt! - before)).toBeLessThan(10_000);
    expect(hostState(gone)).toMatch(/^left \d+s ago$/);
    expect(await hostOf(swarm, "old")).toMatchObject({ alive: true, left: false });
    // A heartbeat, or a join, says it is back.
    await fresh.heartbeat();
    expect(await hostOf(swarm, "new")).toMatchObject({ alive: true, left: false, leftAt: null });
    expect(await fresh.leave()).toBe(true);
    await fresh.join(hostInfo("cpu"));
    expect(await hostOf(swarm, "new")).toMatchObject({ alive: true, left: false, leftAt: null });

    // A host marks only itself, and only through the function.
    await expect(old("UPDATE swarm.hosts SET left_at = now() WHERE name = 'new'")).rejects.toThrow(
      /permission denied/,
    );
    expect((await old("SELECT swarm.leave() AS r")).rows[0].r).toEqual({ host: "old", left: true });
    expect(await hostOf(swarm, "new")).toMatchObject({ alive: true, left: false });
    // One that never joined has nothing to leave.
    const never = await SwarmClient.connect(swarm.hostUrl("never"));
    try {
      expect(await never.leave()).toBe(false);
    } finally {
      await never.close();
    }

    // With the database gone, leaving answers false at once, and throws nothing.
    await oldClient.end();
    swarm.cluster.stop("fast");
    try {
      const started = Date.now();
      expect(await fresh.leave(2_000)).toBe(false);
      expect(Date.now() - started).toBeLessThan(4_000);
    } finally {
      swarm.cluster.start();
    }
  } finally {
    await fresh.close();
    await oldClient.end().catch(() => undefined);
  }
}, 120_000);
