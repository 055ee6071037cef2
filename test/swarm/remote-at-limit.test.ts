/**
 * The swarm's git remote gone (its daemon stopped) when the last trial of a run is kept,
 * or is the adoption of another host's keep: the keep's push, or the fetch of the adopted
 * head, is not retried past a bounded wait once the run has reached its limit. The run
 * ends at its limit and says what waits; `resume`, with the remote back, pushes the keep
 * and moves the line, once, or adopts the head.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { QUADRATIC_YAML, runCli, sh, waitFor } from "../helpers.js";
import { initSwarmTask, keepOnBase, type SwarmFixture, swarmFixture } from "./fixture.js";
import { runToLimit } from "./host-process.js";

const swarms: SwarmFixture[] = [];
afterAll(async () => {
  for (const s of swarms) await s.close();
});

// A researcher whose change always wins: X at the minimum of the score.
const TO_MINIMUM = `sed -i 's/^const X = .*;/const X = 3;/' train.mjs && echo '{"title": "X to 3", "hypothesis": "the score is least there"}'`;
const WINNING = [
  ...QUADRATIC_YAML,
  "judge: { policy: greedy }",
  `researcher: { command: ${JSON.stringify(TO_MINIMUM)} }`,
].join("\n");

it("a keep whose push meets an unreachable remote at --max-trials ends the run; resume pushes it, once", async () => {
  const swarm = await swarmFixture(["a"], { init: false });
  swarms.push(swarm);
  const task = await initSwarmTask(swarm, { yaml: WINNING });
  expect(task.init.code, task.init.stderr).toBe(0);
  // Every ref the remote takes from now on, one line each.
  const pushes = join(task.bare, "pushes.log");
  const hook = join(task.bare, "hooks", "update");
  writeFileSync(hook, `#!/bin/sh\necho "$1 $3" >> '${pushes}'\n`);
  chmodSync(hook, 0o755);
  const pushed = () => (existsSync(pushes) ? readFileSync(pushes, "utf8").trim().split("\n") : []);

  const dir = task.clone("a");
  const base = sh(dir, "git rev-parse HEAD");
  const { url, env } = task.login("a");
  const { child, host, lastTrial } = runToLimit(dir, url, env, 4);
  let stopped = 0;
  try {
    await lastTrial();
    await task.daemon.stop();
    stopped = Date.now();
    // Its limit reached, the run ends rather than wait for the remote: the trial's 4 s,
    // 10 s for the keep's push, and 10 s for the uploads still queued, with room to spare.
    expect(await host.within(60_000), child.out).toBe(0);
    expect(Date.now() - stopped).toBeLessThan(45_000);
  } finally {
    child.kill("SIGKILL");
    await task.daemon.restart();
  }
  expect(child.out).toMatch(
    /swarm: #1 won on the line's head, but the remote did not take its commit in the 10 s it is waited for once the run has reached its limit: its push and the move of the line to it wait in this host's ledger, and `autoresearch resume --tag r` makes them once the remote answers; nothing is lost/,
  );
  expect(child.out).toMatch(/run finished: reached --max-trials 2/);
  expect(child.out).toMatch(
    /swarm: #1 not uploaded to the swarm yet: the next `autoresearch resume --tag r` pushes and uploads what is missing/,
  );
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
    expect(last.reason).toMatch(/its push and move of the line wait/);
    commit = last.commit!;
  } finally {
    before.close();
  }
  expect(pushed()).toEqual([]);
  expect(sh(dir, "git rev-parse autoresearch/r")).toBe(base);
  expect((await runCli(["doctor"], { cwd: dir })).stdout).toMatch(/run r: ok\n$/);
  expect((await swarm.owner.line())!.version).toBe(0);

  // resume, with the remote back: pushed once, judged again, kept, the line moved to it.
  const resumed = await runCli(["resume", "--tag", "r"], { cwd: dir, env, timeoutMs: 90_000 });
  expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
  const ref = "refs/autoresearch-swarm/a/r/1";
  expect(pushed()).toEqual([`${ref} ${commit}`]);
  expect(sh(dir, "git rev-parse autoresearch/r")).toBe(commit);
  const line = (await swarm.owner.line())!;
  expect({ version: line.version, commit: line.commitSha }).toEqual({ version: 1, commit });
  const { trials } = await swarm.owner.history();
  expect(trials.map((t) => `${t.uid} ${t.verdict}`).sort()).toEqual(["r/0 keep", "r/1 keep"]);

  // A resume after it pushes nothing more.
  const again = await runCli(["resume", "--tag", "r"], { cwd: dir, env, timeoutMs: 90_000 });
  expect(again.code, again.stdout + again.stderr).toBe(0);
  expect(pushed()).toEqual([`${ref} ${commit}`]);
  expect((await swarm.owner.line())!.version).toBe(1);
  const doctor = await runCli(["swarm", "doctor", "--database", swarm.ownerUrl]);
  expect(doctor.stdout + doctor.stderr).toBe("swarm: ok\n");
}, 240_000);

it("an adoption whose fetch meets an unreachable remote at --max-trials ends the run; resume adopts the head", async () => {
  const swarm = await swarmFixture(["a", "c"], { init: false });
  swarms.push(swarm);
  const task = await initSwarmTask(swarm, { yaml: WINNING });
  expect(task.init.code, task.init.stderr).toBe(0);
  const dir = task.clone("a");
  const { url, env } = task.login("a");
  // a's last trial is the adoption of c's keep, which lands while a measures its baseline.
  const { child, host } = runToLimit(dir, url, env, 5);
  let head: string;
  try {
    await waitFor(() => /#0 replicate 0 running/.test(child.out), 60_000, "a's baseline");
    head = await keepOnBase(swarm, task, {
      host: "c",
      hardwareClass: "cpu-c",
      title: "X to 3",
      metric: 0.5,
      edit: (train) => train.replace(/const X = [\d.-]+;/, "const X = 3;"),
    });
    await task.daemon.stop();
    // Its limit reached, the run ends rather than wait for the remote: the baseline's
    // 5 s, 10 s for the fetch, and the close's moment, with room to spare.
    expect(await host.within(60_000), child.out).toBe(0);
  } finally {
    child.kill("SIGKILL");
    await task.daemon.restart();
  }
  expect(child.out).toMatch(
    /swarm: #1 not adopted: the swarm's remote git:\/\/\S+ did not give the line's head \(\w{12}, host c's keep\) in the 10 s it is waited for once the run has reached its limit; `autoresearch resume --tag r` adopts it once the remote answers; nothing is lost/,
  );
  expect(child.out).toMatch(/run finished: reached --max-trials 2/);
  const before = Ledger.open(dir);
  try {
    const r = before.run("r")!;
    expect(r.status).toBe("finished");
    const adoption = before.trials(r.id).at(-1)!;
    expect(adoption).toMatchObject({
      n: 1,
      researcher: "swarm",
      verdict: "interrupted",
      title: "X to 3 (adopted from c)",
      commit: null,
    });
    expect(adoption.reason).toMatch(/^not adopted: .*; `autoresearch resume --tag r` adopts it$/);
  } finally {
    before.close();
  }

  // resume, with the remote back, adopts the head: measured here, and built on.
  const resumed = await runCli(["resume", "--tag", "r"], { cwd: dir, env, timeoutMs: 90_000 });
  expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
  const after = Ledger.open(dir);
  try {
    const adoption = after.trials(after.run("r")!.id).at(-1)!;
    expect(adoption).toMatchObject({ n: 2, researcher: "swarm", verdict: "keep", metric: 0.5 });
    expect(adoption.commit).toBe(head!);
  } finally {
    after.close();
  }
  expect(sh(dir, "git rev-parse autoresearch/r")).toBe(head!);
  expect((await runCli(["doctor"], { cwd: dir })).stdout).toMatch(/run r: ok\n$/);
  const doctor = await runCli(["swarm", "doctor", "--database", swarm.ownerUrl]);
  expect(doctor.stdout + doctor.stderr).toBe("swarm: ok\n");
}, 240_000);
