import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { retry, SwarmBusyError, type SwarmClient } from "../../src/swarm/index.js";
import { type SwarmFixture, swarmFixture } from "./fixture.js";

let swarm: SwarmFixture;
let host: SwarmClient;
/** The owner's session that holds the lock, and one that watches pg_stat_activity. */
let holder: pg.Client;
let watcher: pg.Client;
beforeAll(async () => {
  swarm = await swarmFixture(["a"]);
  // The server ends a statement at 0.8 of this, a lock wait at 0.6 (see SwarmConnection).
  host = await swarm.host("a", "cpu", { queryTimeoutMs: 3_000, applicationName: "lock-test" });
  holder = new pg.Client({ connectionString: swarm.ownerUrl });
  // The superuser sees every session's query in pg_stat_activity; the owner would not.
  watcher = new pg.Client({ connectionString: swarm.cluster.superuserUrl });
  await holder.connect();
  await watcher.connect();
});
afterAll(async () => {
  await holder?.end();
  await watcher?.end();
  await swarm?.close();
});

/** How many of the host's calls to record_trial the server is running now. */
async function uploadsInServer(): Promise<number> {
  const { rows } = await watcher.query<{ n: number }>(
    `SELECT count(*)::integer AS n FROM pg_stat_activity
      WHERE datname = 'swarm' AND application_name = 'lock-test' AND state = 'active'
        AND query LIKE '%record_trial%'`,
  );
  return rows[0]!.n;
}

it("an upload that waits on another session's lock is told as a lock wait, and its retry never runs beside it", async () => {
  // Another session (a long transaction, a migration by hand) holds the table uploads write.
  await holder.query("BEGIN");
  await holder.query("LOCK TABLE swarm.trials IN ACCESS EXCLUSIVE MODE");
  let most = 0;
  let watching = true;
  const watch = (async () => {
    while (watching) {
      most = Math.max(most, await uploadsInServer());
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  let retries = 0;
  const upload = {
    uid: "a-1",
    title: "lr 0.02",
    diffHash: "d1",
    hardwareClass: "cpu",
    verdict: "discard" as const,
    metric: 1.5,
  };
  let error: unknown;
  try {
    await retry(() => host.recordTrial(upload), {
      attempts: 3,
      baseDelayMs: 10,
      random: () => 0,
      onRetry: () => {
        retries++;
      },
    });
  } catch (caught) {
    error = caught;
  } finally {
    watching = false;
    await watch;
    await holder.query("ROLLBACK");
  }
  // Soft: each of these is reported, not only the first that fails.
  expect
    .soft((error as Error).message)
    .toMatch(
      /^the swarm's database postgres:\/\/a:\*\*\*@\S+ ended upload of a trial after it waited 1\.8 s on a lock \(canceling statement due to lock timeout\): another session holds a lock on what the call needs; see in pg_stat_activity on that server which session holds it/,
    );
  expect.soft((error as Error).message).not.toMatch(/unreachable|host and port/);
  // Each attempt was ended by the server before the next was sent: never two at once.
  expect.soft(retries).toBe(2);
  expect.soft(most, "the host's uploads waiting in the server at once").toBe(1);
  expect.soft(await uploadsInServer()).toBe(0);
  // Retried as an outage is, but told apart from one.
  expect(error).toBeInstanceOf(SwarmBusyError);
  // The lock gone, the same call lands, once.
  expect((await host.recordTrial(upload)).created).toBe(true);
}, 60_000);

it("a call that finds every connection held by a statement waiting on a lock says so, not that the database is unreachable", async () => {
  // One connection, given up on after 1 s, while a lock wait lasts 18 s.
  const busy = await swarm.host("a", "cpu", {
    queryTimeoutMs: 30_000,
    poolSize: 1,
    connectTimeoutMs: 1_000,
  });
  const upload = (uid: string) => ({
    uid,
    title: uid,
    diffHash: uid,
    hardwareClass: "cpu",
    verdict: "discard" as const,
    metric: 1.5,
  });
  await holder.query("BEGIN");
  await holder.query("LOCK TABLE swarm.trials IN ACCESS EXCLUSIVE MODE");
  const first = busy.recordTrial(upload("a-2"));
  let error: unknown;
  try {
    await new Promise((r) => setTimeout(r, 300));
    await busy.recordTrial(upload("a-3"));
  } catch (caught) {
    error = caught;
  } finally {
    await holder.query("ROLLBACK");
  }
  expect(error).toBeInstanceOf(SwarmBusyError);
  expect((error as Error).message).toMatch(
    /^the swarm's database \S+ has not answered this host's 1 earlier statements, so none of its connections was free for upload of a trial: they wait on a lock another session holds \(the server ends such a wait after 18 s and says which\), or the server hangs$/,
  );
  // The lock gone, the statement that waited lands.
  expect((await first).created).toBe(true);
}, 60_000);
