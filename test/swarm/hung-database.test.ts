import { afterAll, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { NEWEST_HOST_FUNCTION } from "../../src/swarm/functions.js";
import { QUADRATIC_YAML, runCli, sh, startCli, waitFor } from "../helpers.js";
import { initSwarmTask, type SwarmFixture, swarmFixture } from "./fixture.js";
import { runToLimit, watched } from "./host-process.js";

const swarms: SwarmFixture[] = [];
afterAll(async () => {
  for (const s of swarms) await s.close();
});

const GREEDY = [...QUADRATIC_YAML, "judge: { policy: greedy }"];

/** The host's trials in the ledger, as `uid verdict` lines, and in the database. */
async function trialsBoth(swarm: SwarmFixture, dir: string, tag: string) {
  const ledger = Ledger.open(dir);
  try {
    const run = ledger.run(tag)!;
    const local = ledger.trials(run.id).map((t) => `${tag}/${t.n} ${t.verdict}`);
    const { trials } = await swarm.owner.history();
    const shared = trials.filter((t) => t.host === "a").map((t) => `${t.uid} ${t.verdict}`);
    return { local, shared: shared.sort() };
  } finally {
    ledger.close();
  }
}

it("Ctrl-C ends a run within seconds while the database hangs mid-query; resume uploads what it missed, once", async () => {
  const swarm = await swarmFixture(["a"], { init: false });
  swarms.push(swarm);
  const task = await initSwarmTask(swarm, { yaml: GREEDY.join("\n") });
  expect(task.init.code, task.init.stderr).toBe(0);
  const dir = task.clone("a");
  const { url, env } = task.login("a");
  const run = ["run", "--tag", "r", "--max-trials", "3", "--lookahead", "0"];
  const child = startCli([...run, "--hardware-class", "cpu", "--swarm", url], dir, {
    ...env,
    TEST_SLEEP_S: "3",
  });
  const host = watched(child);
  try {
    // Hung while the baseline runs: its upload and the next trial's claim get no answer.
    await waitFor(() => /#0 replicate 0 running/.test(child.out), 60_000, "the baseline");
    swarm.cluster.freeze();
    await waitFor(() => /#1 proposed/.test(child.out), 30_000, "the next proposal");
    await new Promise((r) => setTimeout(r, 2_500));
    const stop = Date.now();
    child.kill("SIGINT");
    expect(await host.within(30_000), child.out).toBe(130);
    expect(Date.now() - stop, child.out).toBeLessThan(10_000);
  } finally {
    swarm.cluster.thaw();
    child.kill("SIGKILL");
  }

  // Everything is in the ledger, as a stop without a swarm leaves it.
  const ledger = Ledger.open(dir);
  try {
    const r = ledger.run("r")!;
    expect(r.status).toBe("stopped");
    expect(ledger.trials(r.id).map((t) => [t.n, t.state, t.verdict, t.reason])).toEqual([
      [0, "done", "keep", expect.any(String)],
      [1, "done", "interrupted", "stopped while the swarm's database was unreachable"],
    ]);
  } finally {
    ledger.close();
  }
  expect((await runCli(["doctor"], { cwd: dir })).stdout).toMatch(/run r: ok\n$/);

  // A resume the swarm refuses (a wrong password) leaves the trial it would have continued
  // as it was: interrupted, not running.
  const refused = await runCli(["resume", "--tag", "r"], {
    cwd: dir,
    env: { ...env, PGPASSWORD: "not-the-password" },
  });
  expect(refused.code, refused.stdout + refused.stderr).not.toBe(0);
  const after = Ledger.open(dir);
  try {
    const t = after.trials(after.run("r")!.id)[1]!;
    expect([t.state, t.verdict, t.reason]).toEqual([
      "done",
      "interrupted",
      "stopped while the swarm's database was unreachable",
    ]);
  } finally {
    after.close();
  }
  expect((await runCli(["doctor"], { cwd: dir })).stdout).toMatch(/run r: ok\n$/);

  // Resumed with the database back: the interrupted trial runs again, and the database
  // holds each trial once, with its verdict as the host recorded it.
  const resumed = await runCli(["resume", "--tag", "r"], { cwd: dir, env, timeoutMs: 90_000 });
  expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
  const both = await trialsBoth(swarm, dir, "r");
  expect(both.local).toHaveLength(3);
  expect(both.shared).toEqual([...both.local].sort());
  const doctor = await runCli(["swarm", "doctor", "--database", swarm.ownerUrl]);
  expect(doctor.stdout + doctor.stderr).toBe("swarm: ok\n");
}, 240_000);

it("a keep whose line move meets a stopped database at --max-trials ends the run; resume moves the line, once", async () => {
  const swarm = await swarmFixture(["a"], { init: false });
  swarms.push(swarm);
  // A researcher whose change always wins: X at the minimum of the score.
  const toMinimum = `sed -i 's/^const X = .*;/const X = 3;/' train.mjs && echo '{"title": "X to 3", "hypothesis": "the score is least there"}'`;
  const yaml = [...GREEDY, `researcher: { command: ${JSON.stringify(toMinimum)} }`].join("\n");
  const task = await initSwarmTask(swarm, { yaml });
  expect(task.init.code, task.init.stderr).toBe(0);
  const dir = task.clone("a");
  const base = sh(dir, "git rev-parse HEAD");
  const { url, env } = task.login("a");
  const { child, host, lastTrial } = runToLimit(dir, url, env, 4);
  try {
    await lastTrial();
    swarm.cluster.stop("fast");
    // Its limit reached, the run ends rather than wait for the database.
    expect(await host.within(90_000), child.out).toBe(0);
  } finally {
    child.kill("SIGKILL");
    swarm.cluster.start();
  }
  expect(child.out).toMatch(
    /swarm: #1 won on the line's head, but the database did not answer in the 10 s it is waited for once the run has reached its limit: .*`autoresearch resume --tag r` makes it/,
  );
  expect(child.out).toMatch(/run finished: reached --max-trials 2/);
  const before = Ledger.open(dir);
  let commit: string;
  try {
    const r = before.run("r")!;
    expect(r.status).toBe("finished");
    const last = before.trials(r.id).at(-1)!;
    expect({ n: last.n, verdict: last.verdict, metric: last.metric }).toEqual({
      n: 1,
      verdict: "interrupted",
      metric: 0.5,
    });
    expect(last.reason).toMatch(/its move of the line waits/);
    commit = last.commit!;
  } finally {
    before.close();
  }
  // The run's best line stays where the swarm's line is: on the base.
  expect(sh(dir, "git rev-parse autoresearch/r")).toBe(base);
  expect((await runCli(["doctor"], { cwd: dir })).stdout).toMatch(/run r: ok\n$/);
  expect((await swarm.owner.line())!.version).toBe(0);

  // resume settles it: judged again from its measurement, kept, the line moved to it.
  const resumed = await runCli(["resume", "--tag", "r"], { cwd: dir, env, timeoutMs: 90_000 });
  expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
  expect(await trialsBoth(swarm, dir, "r")).toEqual({
    local: ["r/0 keep", "r/1 keep"],
    shared: ["r/0 keep", "r/1 keep"],
  });
  expect(sh(dir, "git rev-parse autoresearch/r")).toBe(commit);
  const line = (await swarm.owner.line())!;
  expect({ version: line.version, commit: line.commitSha, host: line.host }).toEqual({
    version: 1,
    commit,
    host: "a",
  });

  // Once: a resume after it has nothing to settle, and moves nothing.
  const again = await runCli(["resume", "--tag", "r"], { cwd: dir, env, timeoutMs: 90_000 });
  expect(again.code, again.stdout + again.stderr).toBe(0);
  expect((await swarm.owner.line())!.version).toBe(1);
  const sql = await swarm.rawSql("a");
  expect((await sql("SELECT count(*)::int AS n FROM swarm.line_moves")).rows[0].n).toBe(1);
  expect((await trialsBoth(swarm, dir, "r")).shared).toEqual(["r/0 keep", "r/1 keep"]);
  expect((await runCli(["doctor"], { cwd: dir })).stdout).toMatch(/run r: ok\n$/);
}, 240_000);

it("a run whose first join is refused records nothing; doctor is clean, and the same command runs once the cause is fixed", async () => {
  const swarm = await swarmFixture(["a"], { init: false });
  swarms.push(swarm);
  const task = await initSwarmTask(swarm, { yaml: GREEDY.join("\n") });
  expect(task.init.code, task.init.stderr).toBe(0);
  const { url, env } = task.login("a");
  const command = ["run", "--tag", "r", "--max-trials", "2", "--lookahead", "0", "--swarm", url];
  const nothingRecorded = async (dir: string) => {
    const ledger = Ledger.open(dir);
    try {
      expect(ledger.runs()).toEqual([]);
    } finally {
      ledger.close();
    }
    expect(sh(dir, "git branch --list 'autoresearch/*'")).toBe("");
    const doctor = await runCli(["doctor"], { cwd: dir });
    expect({ code: doctor.code, out: doctor.stdout }).toEqual({
      code: 0,
      out: expect.stringMatching(/no runs yet\n$/),
    });
  };

  // The role may read the swarm but not call its newest function: the join refuses it.
  await swarm.cluster.admin(
    `REVOKE EXECUTE ON FUNCTION ${NEWEST_HOST_FUNCTION} FROM swarm_hosts`,
    swarm.database,
  );
  const dir = task.clone("a");
  const refused = await runCli(command, { cwd: dir, env });
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/this host's role lacks the grants of the swarm's newest schema/);
  await nothingRecorded(dir);
  // A branch of that name the person made (at the base) is theirs, and stays.
  const mine = task.clone("a");
  sh(mine, "git branch autoresearch/r");
  expect((await runCli(command, { cwd: mine, env })).code).not.toBe(0);
  expect(sh(mine, "git branch --list 'autoresearch/*'")).toMatch(/autoresearch\/r/);

  // Another task file: refused too, before anything is recorded.
  const other = task.clone("a");
  sh(other, "printf '\\nseed: 7\\n' >> autoresearch.yaml");
  sh(other, "git -c user.name=t -c user.email=t@t commit -qam 'another seed'");
  const otherTask = await runCli(command, { cwd: other, env });
  expect(otherTask.code).not.toBe(0);
  expect(otherTask.stderr).toMatch(
    /this task file differs from the one of the swarm [\s\S]*\+ seed: 7/,
  );
  await nothingRecorded(other);

  // The owner grants it: the same command joins and runs.
  await swarm.cluster.admin(
    `GRANT EXECUTE ON FUNCTION ${NEWEST_HOST_FUNCTION} TO swarm_hosts`,
    swarm.database,
  );
  const joined = await runCli(command, { cwd: dir, env, timeoutMs: 90_000 });
  expect(joined.code, joined.stdout + joined.stderr).toBe(0);
  expect((await runCli(["doctor"], { cwd: dir })).stdout).toMatch(/run r: ok\n$/);
}, 240_000);
