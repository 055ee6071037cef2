/**
 * A hardware class measures the starting commit once: a host that joins after another of
 * its class measured the baseline takes that measurement and its noise floor, and runs
 * no replicate of the baseline itself.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import type { NoiseFloor } from "../../src/ledger/types.js";
import { taskHash } from "../../src/orchestrator/swarm.js";
import { SwarmClient } from "../../src/swarm/index.js";
import { QUADRATIC_YAML, runCli, sh } from "../helpers.js";
import { initSwarmTask, type SwarmFixture, type SwarmTask, swarmFixture } from "./fixture.js";

let swarm: SwarmFixture;
let task: SwarmTask;
const HOSTS = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"];
beforeAll(async () => {
  swarm = await swarmFixture(HOSTS, { init: false });
  const yaml = [...QUADRATIC_YAML, "judge: { policy: confirm, seeds: 3 }"].join("\n");
  task = await initSwarmTask(swarm, { yaml });
  expect(task.init.code, task.init.stderr).toBe(0);
}, 120_000);
afterAll(async () => {
  for (const client of clients) await client.close();
  await swarm?.close();
});

const dirs: Record<string, string> = {};
function run(
  host: string,
  trials: number,
  cls: string,
  options: { env?: Record<string, string>; interruptWhen?: RegExp; resume?: boolean } = {},
) {
  const { url, env } = task.login(host);
  dirs[host] ??= task.clone(host);
  const args = options.resume
    ? ["resume", "--tag", "r"]
    : ["run", "--tag", "r", "--max-trials", String(trials), "--lookahead", "0"];
  if (!options.resume) args.push("--swarm", url, "--hardware-class", cls);
  return runCli(args, {
    cwd: dirs[host],
    env: { ...env, ...options.env },
    ...(options.interruptWhen ? { interruptWhen: options.interruptWhen } : {}),
  });
}

/** A client of host `name`, joined to this task's swarm as `hardwareClass`. */
async function joined(name: string, hardwareClass: string): Promise<SwarmClient> {
  const client = await SwarmClient.connect(swarm.hostUrl(name));
  clients.push(client);
  const taskFile = readFileSync(join(task.origin, "autoresearch.yaml"), "utf8");
  await client.join({
    taskHash: taskHash(taskFile),
    taskFile,
    hardwareClass,
    stages: [],
    slots: 1,
  });
  return client;
}
const clients: SwarmClient[] = [];

/** A host's baseline, how many replicates it ran here, and its run's noise floor. */
function local(host: string) {
  const ledger = Ledger.open(dirs[host]!);
  try {
    const id = ledger.run("r")!.id;
    const baseline = ledger.trials(id).find((t) => t.baseline)!;
    const json = ledger.runById(id)!.noiseJson;
    const noise = json ? (JSON.parse(json) as NoiseFloor) : null;
    return { baseline, replicates: ledger.replicates(baseline.id).length, noise: noise! };
  } finally {
    ledger.close();
  }
}

it("takes the class's baseline and noise floor from the host that measured it", async () => {
  const a = await run("a", 1, "cpu-x");
  expect(a.code, a.stderr).toBe(0);
  const b = await run("b", 2, "cpu-x");
  expect(b.code, b.stderr).toBe(0);
  // Another class measures for itself.
  const c = await run("c", 1, "cpu-y");
  expect(c.code, c.stderr).toBe(0);

  const [la, lb, lc] = [local("a"), local("b"), local("c")];
  expect(la.replicates).toBe(3);
  expect(la.noise.values).toHaveLength(3);
  expect(la.noise.measuredBy).toBeUndefined();
  // b ran no replicate of the baseline: a's value and noise floor, said as a's.
  expect(lb.replicates).toBe(0);
  expect(lb.baseline).toMatchObject({ verdict: "keep", metric: la.baseline.metric });
  expect(lb.baseline.reason).toBe("measured on cpu-x by a");
  expect(b.stdout).toMatch(/#0 not run here: its class cpu-x has it measured by a \(\d/);
  expect(lb.noise).toMatchObject({ seeds: la.noise.seeds, values: la.noise.values });
  expect(lb.noise).toMatchObject({ trial: lb.baseline.n, measuredBy: "a" });
  const status = await runCli(["status"], { cwd: dirs.b! });
  expect(status.stdout).toMatch(/noise floor: .* seeds of trial #0, measured by swarm host a\n/);
  // b went on to judge a trial of its own against it.
  const trials = Ledger.open(dirs.b!);
  try {
    const own = trials.trials(trials.run("r")!.id).filter((t) => !t.baseline);
    expect(own.map((t) => t.verdict).every((v) => v === "keep" || v === "discard")).toBe(true);
    expect(own.length).toBe(1);
  } finally {
    trials.close();
  }
  expect(lc.replicates).toBe(3);
  expect(lc.noise.measuredBy).toBeUndefined();

  // Two hosts of a new class at the same moment, replicates of 2 s: one measures, the
  // other waits for that measurement and tries a change meanwhile.
  const slow = { TEST_SLEEP_S: "2" };
  const [d, e] = await Promise.all([
    run("d", 3, "cpu-z", { env: slow }),
    run("e", 3, "cpu-z", { env: slow }),
  ]);
  expect([d.code, e.code], d.stderr + e.stderr).toEqual([0, 0]);
  const pair = [local("d"), local("e")].sort((x, y) => x.replicates - y.replicates);
  expect(pair.map((x) => x.replicates)).toEqual([0, 3]);
  expect(pair[0]!.noise.values).toEqual(pair[1]!.noise.values);
  const dMeasured = local("d").replicates === 3;
  const waiter = dMeasured ? "e" : "d";
  const said = dMeasured ? e.stdout : d.stdout;
  // Its limit leaves room for trials, so it says it tries changes meanwhile.
  expect(said).toMatch(
    /is measuring the baseline on cpu-z: this host takes its measurement rather than run the same code again \(waiting up to \d+ s, trying changes meanwhile\)/,
  );
  // The waiter's trials ran their first replicate before the measurement came, and were
  // judged against it once it had. (A proposal another host had tried is not run.)
  const ledger = Ledger.open(dirs[waiter]!);
  try {
    const [baseline, ...trials] = ledger.trials(ledger.run("r")!.id);
    const beside = trials.filter((t) =>
      ledger.replicates(t.id).some((r) => r.runningAt! < baseline!.finishedAt!),
    );
    expect(beside.length, JSON.stringify(trials.map((t) => t.reason))).toBeGreaterThan(0);
    for (const trial of beside) {
      expect(trial).toMatchObject({
        parentCommit: baseline!.commit,
        incumbentMetric: baseline!.metric,
      });
      expect(trial.verdict).toMatch(/^(keep|discard)$/);
      expect(said).toContain(`#${trial.n} measured: judged once the baseline has ended`);
    }
  } finally {
    ledger.close();
  }

  // In the database: the measurements that ran carry their noise floor; b's copy does not.
  // (A host's adoption of another's keep is recorded as a baseline too, of another commit.)
  const base = sh(task.bare, "git rev-parse refs/autoresearch-swarm/base");
  const sql = await swarm.rawSql("a");
  const { rows } = await sql(
    "SELECT host, noise FROM swarm.trials WHERE baseline AND commit_sha = $1 AND host < 'f' ORDER BY host",
    [base],
  );
  expect(rows.map((r: { host: string; noise: unknown }) => [r.host, r.noise !== null])).toEqual([
    ["a", true],
    ["b", false],
    ["c", true],
    ["d", dMeasured],
    ["e", !dMeasured],
  ]);
}, 180_000);

it("measures for itself past a claim from another class, or a measurement without noise", async () => {
  const base = sh(task.bare, "git rev-parse refs/autoresearch-swarm/base");
  // f, of another class, claims cpu-v's baseline and never measures it.
  const f = await joined("f", "other");
  const held = await f.claim({ diffHash: `baseline of ${base} on cpu-v`, uid: "x" }, 300);
  expect(held.ok).toBe(true);
  const g = await run("g", 1, "cpu-v");
  expect(g.code, g.stderr).toBe(0);
  expect(g.stdout).toMatch(/host f holds the claim on the baseline on cpu-v but joined as other/);
  expect(local("g").replicates).toBe(3);

  // cpu-u's only measurement has no noise floor (made before the swarm kept them): the
  // confirm judge's host measures its own, which the next host then takes.
  const h = await joined("h", "cpu-u");
  await h.recordTrial({
    uid: "old/0",
    hardwareClass: "cpu-u",
    verdict: "keep",
    baseline: true,
    metric: 4.5,
    parentCommit: base,
    commitSha: base,
  });
  const i = await run("i", 1, "cpu-u");
  expect(i.code, i.stderr).toBe(0);
  expect(local("i").replicates).toBe(3);
  expect(local("i").noise.measuredBy).toBeUndefined();
}, 180_000);

it("takes the class's measurement when it resumes a baseline it was stopped in", async () => {
  // j is stopped in its baseline's second replicate; k then measures cpu-t.
  const j = await run("j", 1, "cpu-t", {
    env: { TEST_SLEEP_S: "2" },
    interruptWhen: /#0 replicate 2 running/,
  });
  expect(j.code, j.stdout + j.stderr).toBe(130);
  const k = await run("k", 1, "cpu-t");
  expect(k.code, k.stderr).toBe(0);
  expect(local("k").replicates).toBe(3);
  const resumed = await run("j", 1, "cpu-t", { resume: true });
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(local("j").baseline).toMatchObject({ verdict: "keep", reason: "measured on cpu-t by k" });
  expect(local("j").noise, JSON.stringify(local("j"))).toMatchObject({ measuredBy: "k" });
}, 120_000);
