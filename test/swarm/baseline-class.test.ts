/**
 * A hardware class measures the starting commit once: a host that joins after another of
 * its class measured the baseline takes that measurement and its noise floor, and runs
 * no replicate of the baseline itself.
 */
import { afterAll, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import type { NoiseFloor } from "../../src/ledger/types.js";
import { QUADRATIC_YAML, runCli } from "../helpers.js";
import { initSwarmTask, type SwarmFixture, swarmFixture } from "./fixture.js";

let swarm: SwarmFixture | undefined;
afterAll(async () => {
  await swarm?.close();
});

it("takes the class's baseline and noise floor from the host that measured it", async () => {
  swarm = await swarmFixture(["a", "b", "c", "d", "e"], { init: false });
  const yaml = [...QUADRATIC_YAML, "judge: { policy: confirm, seeds: 3 }"].join("\n");
  const task = await initSwarmTask(swarm, { yaml });
  expect(task.init.code, task.init.stderr).toBe(0);
  const dirs: Record<string, string> = {};
  const run = (host: string, trials: number, cls: string, extra: Record<string, string> = {}) => {
    const { url, env } = task.login(host);
    dirs[host] = task.clone(host);
    const flags = ["--tag", "r", "--max-trials", String(trials), "--lookahead", "0"];
    return runCli(["run", ...flags, "--swarm", url, "--hardware-class", cls], {
      cwd: dirs[host],
      env: { ...env, ...extra },
    });
  };
  const a = await run("a", 1, "cpu-x");
  expect(a.code, a.stderr).toBe(0);
  const b = await run("b", 2, "cpu-x");
  expect(b.code, b.stderr).toBe(0);
  // Another class measures for itself.
  const c = await run("c", 1, "cpu-y");
  expect(c.code, c.stderr).toBe(0);

  const local = (host: string) => {
    const ledger = Ledger.open(dirs[host]!);
    try {
      const id = ledger.run("r")!.id;
      const baseline = ledger.trials(id).find((t) => t.baseline)!;
      const noise = JSON.parse(ledger.runById(id)!.noiseJson!) as NoiseFloor;
      return { baseline, replicates: ledger.replicates(baseline.id).length, noise };
    } finally {
      ledger.close();
    }
  };
  const [la, lb, lc] = [local("a"), local("b"), local("c")];
  expect(la.replicates).toBe(3);
  expect(la.noise.values).toHaveLength(3);
  expect(la.noise.measuredBy).toBeUndefined();
  // b ran no replicate of the baseline: a's value and noise floor, said as a's.
  expect(lb.replicates).toBe(0);
  expect(lb.baseline).toMatchObject({ verdict: "keep", metric: la.baseline.metric });
  expect(lb.baseline.reason).toBe("measured on cpu-x by a");
  expect(lb.noise).toMatchObject({ seeds: la.noise.seeds, values: la.noise.values });
  expect(lb.noise).toMatchObject({ trial: lb.baseline.n, measuredBy: "a" });
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
  // other waits for that measurement.
  const slow = { TEST_SLEEP_S: "2" };
  const [d, e] = await Promise.all([run("d", 1, "cpu-z", slow), run("e", 1, "cpu-z", slow)]);
  expect([d.code, e.code], d.stderr + e.stderr).toEqual([0, 0]);
  const pair = [local("d"), local("e")].sort((x, y) => x.replicates - y.replicates);
  expect(pair.map((x) => x.replicates)).toEqual([0, 3]);
  expect(pair[0]!.noise.values).toEqual(pair[1]!.noise.values);
  const dMeasured = local("d").replicates === 3;
  expect(d.stdout + e.stdout).toMatch(/is measuring the baseline on cpu-z: this host takes its/);

  // In the database: the measurements that ran carry their noise floor; b's copy does not.
  const sql = await swarm.rawSql("a");
  const { rows } = await sql("SELECT host, noise FROM swarm.trials WHERE baseline ORDER BY host");
  expect(rows.map((r: { host: string; noise: unknown }) => [r.host, r.noise !== null])).toEqual([
    ["a", true],
    ["b", false],
    ["c", true],
    ["d", dMeasured],
    ["e", !dMeasured],
  ]);
}, 180_000);
