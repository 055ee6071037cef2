/**
 * Promotion across hosts, end to end: two hosts of one swarm, only one of which can run
 * the larger stage, each a clone of its own and a process of the built CLI.
 */
import { afterAll, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { promotions, type TransferRow } from "../../src/ledger/promotions.js";
import { swarmPage } from "../../src/report/dashboard/swarm-page.js";
import { QUADRATIC_YAML, runCli } from "../helpers.js";
import { initSwarmTask, type SwarmFixture, swarmFixture } from "./fixture.js";

let swarm: SwarmFixture | undefined;
afterAll(async () => {
  await swarm?.close();
});

it("sends each promotion to a host that can run its stage, and shares its transfer table", async () => {
  swarm = await swarmFixture(["small", "both"], { init: false });
  const yaml = [
    ...QUADRATIC_YAML,
    "judge: { policy: greedy }",
    "stages:",
    "  - { name: short }",
    "  - { name: long, env: { STAGE_SIZE: '2' } }",
    "promote_every: 1",
  ].join("\n");
  const task = await initSwarmTask(swarm, { yaml });
  expect(task.init.code, task.init.stderr).toBe(0);
  const host = (name: string, stages: string[]) => {
    const clone = task.clone(name);
    const { url, env } = task.login(name);
    const flags = stages.length ? ["--stages", stages.join(",")] : [];
    return {
      clone,
      run: runCli(["run", "--tag", "p", "--max-trials", "10", "--swarm", url, ...flags], {
        cwd: clone,
        env,
      }),
    };
  };
  // A stage the task lacks is refused before anything is recorded.
  const wrong = host("small", ["short", "huge"]);
  const refused = await wrong.run;
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain(
    '--stages: the task has no stage "huge"; its stages are short, long',
  );

  const small = host("small", ["short"]);
  const both = host("both", []);
  const [s, b] = await Promise.all([small.run, both.run]);
  expect(s.code, s.stderr).toBe(0);
  expect(b.code, b.stderr).toBe(0);

  const asked = await swarm.owner.promotions();
  expect(asked.length).toBeGreaterThan(0);
  const done = asked.filter((p) => p.state === "done");
  expect(done.length).toBeGreaterThan(0);
  // Only the host that can run "long" ran any; its table is in the swarm for every host.
  expect(new Set(asked.flatMap((p) => (p.host ? [p.host] : [])))).toEqual(new Set(["both"]));
  for (const p of done)
    expect(p.transfer).toMatchObject({
      stage: "long",
      metric: "score",
      rows: expect.any(Array),
      commit: p.commit,
      version: p.version,
    });
  // Each line version is one row, whichever host kept it; the other host's are named so.
  const keptBy = new Map(
    (await swarm.owner.history({ withDiffs: false })).trials
      .filter((t) => t.verdict === "keep" && !t.baseline && t.commitSha)
      .map((t) => [t.commitSha!, t]),
  );
  for (const p of done) {
    const rows = (p.transfer as { rows: TransferRow[] }).rows;
    expect(rows.length).toBe(p.version);
    for (const row of rows) {
      const keep = keptBy.get(row.commit!);
      expect(keep, row.title).toBeDefined();
      expect(row.host).toBe(keep!.host === "both" ? undefined : keep!.host);
      expect(row.n).toBe(keep!.localN);
    }
  }
  const local = (clone: string) => {
    const ledger = Ledger.open(clone);
    try {
      return promotions.list(ledger, ledger.run("p")!.id);
    } finally {
      ledger.close();
    }
  };
  expect(local(small.clone)).toEqual([]);
  expect(local(both.clone).filter((p) => p.state === "done").length).toBe(done.length);

  const page = await swarmPage(swarm.owner);
  expect(page).toMatch(/<h2>Promotions<\/h2>.*<td>long<\/td><td>done<\/td><td>both<\/td>/s);

  const status = await runCli(["swarm", "status", "--database", swarm.ownerUrl]);
  expect(status.stdout).toMatch(
    /\n {2}host +state +hardware +slots +stages +trials +keeps +spend +running\n/,
  );
  expect(status.stdout).toMatch(/\n {2}small +\w+ +.+? +\d+ +short +\d/);
  expect(status.stdout).toMatch(/\n {2}both +\w+ +.+? +\d+ +short,long +\d/);
  // Newest first: a version kept after `both` stopped stays pending, listed above the done.
  expect(status.stdout).toMatch(
    /promotions:\n(?: {2}line .*\n)*? {2}line v\d+ \([0-9a-f]{12}\) at long: done by both; stacked/,
  );
}, 240_000);
