import pg from "pg";
import { afterAll, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { QUADRATIC_YAML, runCli, sh, startCli, waitFor } from "../helpers.js";
import { initSwarmTask, type SwarmFixture, swarmFixture } from "./fixture.js";
import { runToLimit, watched } from "./host-process.js";

const swarms: SwarmFixture[] = [];
afterAll(async () => {
  for (const s of swarms) await s.close();
});

const GREEDY = [...QUADRATIC_YAML, "judge: { policy: greedy }"];
/** A researcher whose change always wins: X at the minimum of the score. */
const TO_MINIMUM = `sed -i 's/^const X = .*;/const X = 3;/' train.mjs && echo '{"title": "X to 3", "hypothesis": "the score is least there"}'`;
const WINNING = [...GREEDY, `researcher: { command: ${JSON.stringify(TO_MINIMUM)} }`].join("\n");

it("at --max-trials, a keep whose line move meets a hung database ends the run in the 10 s the notice says, plus the close's moment", async () => {
  const swarm = await swarmFixture(["a"], { init: false });
  swarms.push(swarm);
  const task = await initSwarmTask(swarm, { yaml: WINNING });
  expect(task.init.code, task.init.stderr).toBe(0);
  const dir = task.clone("a");
  const { url, env } = task.login("a");
  const { child, host, lastTrial } = runToLimit(dir, url, env, 3);
  const notice = /swarm: #1 won on the line's head, but the database did not answer in the 10 s/;
  host.note(notice);
  let frozenAt = 0;
  try {
    // Frozen while the last trial runs: the pool's connections stay open, nothing answers.
    await lastTrial();
    swarm.cluster.freeze();
    frozenAt = Date.now();
    expect(await host.within(120_000), child.out).toBe(0);
  } finally {
    swarm.cluster.thaw();
    child.kill("SIGKILL");
  }
  const noticeAt = host.at(notice);
  expect(noticeAt, child.out).toBeDefined();
  const waited = (noticeAt! - frozenAt) / 1000;
  const closed = (host.exitedAt - noticeAt!) / 1000;
  // The rest of the replicate (3 s), the move's 10 s; then the close, about 2 s (it was
  // 5 to 30 s per attempt of the move, and 10 s more for the uploads).
  expect(waited, child.out).toBeLessThan(3 + 10 + 3);
  expect(closed, child.out).toBeLessThan(4);
  expect(child.out).toMatch(/run finished: reached --max-trials 2/);

  // The keep waits in the ledger, with its measurement; resume moves the line to it.
  const ledger = Ledger.open(dir);
  let commit: string;
  try {
    const last = ledger.trials(ledger.run("r")!.id).at(-1)!;
    expect([last.n, last.verdict, last.metric]).toEqual([1, "interrupted", 0.5]);
    commit = last.commit!;
  } finally {
    ledger.close();
  }
  const resumed = await runCli(["resume", "--tag", "r"], { cwd: dir, env, timeoutMs: 90_000 });
  expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
  expect(sh(dir, "git rev-parse autoresearch/r")).toBe(commit);
  expect((await swarm.owner.line())!.commitSha).toBe(commit);
  const doctor = await runCli(["swarm", "doctor", "--database", swarm.ownerUrl]);
  expect(doctor.stdout + doctor.stderr).toBe("swarm: ok\n");
}, 240_000);

it("Ctrl-C during a first join to a hung database ends within seconds with 130, recording nothing", async () => {
  const swarm = await swarmFixture(["a"], { init: false });
  swarms.push(swarm);
  const task = await initSwarmTask(swarm, { yaml: GREEDY.join("\n") });
  expect(task.init.code, task.init.stderr).toBe(0);
  const { url, env } = task.login("a");
  const command = ["run", "--tag", "r", "--max-trials", "2", "--lookahead", "0", "--swarm", url];
  // The join's statement waits on a table a session of the owner holds; then the whole
  // server freezes: the host's connection is open, and nothing will answer it.
  const owner = swarm.cluster.superuserUrl.replace(/\/postgres$/, `/${swarm.database}`);
  // One session holds the lock; another looks (a transaction sees one snapshot of activity).
  const [locker, looker] = [new pg.Client(owner), new pg.Client(owner)];
  for (const c of [locker, looker]) {
    c.on("error", () => undefined);
    await c.connect();
  }
  const stopMidJoin = async (dir: string, table: string) => {
    await locker.query("BEGIN");
    await locker.query(`LOCK TABLE swarm.${table} IN ACCESS EXCLUSIVE MODE`);
    const child = startCli(command, dir, env);
    const host = watched(child);
    try {
      await waitFor(
        async () =>
          (
            await looker.query(
              "SELECT 1 FROM pg_stat_activity WHERE usename = 'a' AND wait_event_type = 'Lock'",
            )
          ).rowCount,
        60_000,
        `the join waiting on swarm.${table}`,
      );
      swarm.cluster.freeze();
      const stop = Date.now();
      child.kill("SIGINT");
      expect(await host.within(60_000), child.out).toBe(130);
      // The stop's 2 s of grace for an answer, then the connections cut.
      expect(Date.now() - stop, child.out).toBeLessThan(5_000);
      expect(child.out).toMatch(
        /stopped while joining the swarm at .*: this task recorded nothing \(the swarm may list this host until its heartbeat ages out\); run the same command again to join/,
      );
    } finally {
      swarm.cluster.thaw();
      child.kill("SIGKILL");
      await locker.query("ROLLBACK");
    }
  };
  const noRun = (dir: string) => {
    const ledger = Ledger.open(dir);
    try {
      expect(ledger.runs()).toEqual([]);
    } finally {
      ledger.close();
    }
  };

  // Stopped in the checks before the run is recorded: a branch the person had stays.
  const mine = task.clone("a");
  sh(mine, "git branch autoresearch/r");
  await stopMidJoin(mine, "task");
  noRun(mine);
  expect(sh(mine, "git branch --list 'autoresearch/*'")).toMatch(/autoresearch\/r/);

  // Stopped in the join itself, the run recorded and its branch made: neither is left.
  const dir = task.clone("a");
  await stopMidJoin(dir, "hosts");
  noRun(dir);
  expect(sh(dir, "git branch --list 'autoresearch/*'")).toBe("");
  const doctor = await runCli(["doctor"], { cwd: dir });
  expect(doctor.stdout).toMatch(/no runs yet\n$/);
  for (const c of [locker, looker]) await c.end();

  // The same command runs once the database answers.
  const joined = await runCli(command, { cwd: dir, env, timeoutMs: 90_000 });
  expect(joined.code, joined.stdout + joined.stderr).toBe(0);
}, 240_000);

it("a trial whose upload the run's end left to resume has its claim released when resume uploads it", async () => {
  const swarm = await swarmFixture(["a"], { init: false });
  swarms.push(swarm);
  // A researcher whose change always loses: a discard, which moves nothing.
  const away = `sed -i 's/^const X = .*;/const X = 100;/' train.mjs && echo '{"title": "X to 100", "hypothesis": "far away"}'`;
  const yaml = [...GREEDY, `researcher: { command: ${JSON.stringify(away)} }`].join("\n");
  const task = await initSwarmTask(swarm, { yaml });
  expect(task.init.code, task.init.stderr).toBe(0);
  const { url, env } = task.login("a");
  const claimed = async () => (await swarm.owner.inFlight()).map((c) => c.title);

  // The run ends at its limit while the database is away: the upload, and the release that
  // goes with it, wait for resume. (Stopped rather than frozen: a frozen server may still
  // run an upload sent before the run ended once it goes on, releasing the claim itself.)
  const dir = task.clone("a");
  const { child, host, lastTrial } = runToLimit(dir, url, env, 3);
  try {
    await lastTrial();
    swarm.cluster.stop("fast");
    expect(await host.within(90_000), child.out).toBe(0);
  } finally {
    child.kill("SIGKILL");
    swarm.cluster.start();
  }
  expect(child.out).toMatch(/#1 +discard/);
  expect(await claimed()).toEqual(["X to 100"]);
  const resumed = await runCli(["resume", "--tag", "r"], { cwd: dir, env, timeoutMs: 90_000 });
  expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
  const { trials } = await swarm.owner.history();
  expect(trials.map((t) => `${t.uid} ${t.verdict}`).sort()).toEqual(["r/0 keep", "r/1 discard"]);
  expect(await claimed()).toEqual([]);
}, 240_000);

it("a keep's line move that lands after its host stopped waiting carries its class's best: doctor is clean before resume", async () => {
  // Commits wait for a synchronous standby while one is named (see holdCommits).
  const swarm = await swarmFixture(["a"], { init: false, settings: { synchronous_commit: "on" } });
  swarms.push(swarm);
  const task = await initSwarmTask(swarm, { yaml: WINNING });
  expect(task.init.code, task.init.stderr).toBe(0);
  const dir = task.clone("a");
  const { url, env } = task.login("a");
  // Commits wait for a synchronous standby that never comes: each statement runs, and its
  // transaction commits only once the wait is called off, whoever still listens by then.
  const holdCommits = async (on: boolean) => {
    await swarm.cluster.admin(
      on
        ? "ALTER SYSTEM SET synchronous_standby_names = 'nobody'"
        : "ALTER SYSTEM RESET synchronous_standby_names",
    );
    await swarm.cluster.admin("SELECT pg_reload_conf()");
  };
  const { child, host, lastTrial } = runToLimit(dir, url, env, 3);
  try {
    await lastTrial();
    await holdCommits(true);
    expect(await host.within(90_000), child.out).toBe(0);
  } finally {
    await holdCommits(false);
    child.kill("SIGKILL");
  }
  // The host gave the move up at its limit; the database made it once commits went on.
  expect(child.out).toMatch(/swarm: #1 won on the line's head, but the database did not answer/);
  const line = await waitFor(
    async () => {
      const head = await swarm.owner.line();
      return head?.version === 1 ? head : null;
    },
    10_000,
    "the move landing",
  );
  expect([line.host, line.runTag, line.localN]).toEqual(["a", "r", 1]);
  const doctor = await runCli(["swarm", "doctor", "--database", swarm.ownerUrl]);
  expect(doctor.stdout + doctor.stderr).toBe("swarm: ok\n");
  const best = await swarm.owner.incumbent("cpu");
  expect([best.trialId, best.metric]).toEqual([line.trialId, 0.5]);

  // resume settles the host's own ledger: the keep, the line where the database has it.
  const resumed = await runCli(["resume", "--tag", "r"], { cwd: dir, env, timeoutMs: 90_000 });
  expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
  expect(sh(dir, "git rev-parse autoresearch/r")).toBe(line.commitSha);
  expect((await swarm.owner.line())!.version).toBe(1);
  const after = await runCli(["swarm", "doctor", "--database", swarm.ownerUrl]);
  expect(after.stdout + after.stderr).toBe("swarm: ok\n");
}, 240_000);
