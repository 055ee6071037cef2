/**
 * A promotion of a line whose keeps come from several runs of one host: trial numbers
 * repeat across runs, so each row is its own change, measured on its own.
 */
import { afterAll, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { changeName, promotions, type TransferTable } from "../../src/ledger/promotions.js";
import { runCli, sh } from "../helpers.js";
import { initSwarmTask, type SwarmFixture, swarmFixture } from "./fixture.js";

let swarm: SwarmFixture | undefined;
afterAll(async () => {
  await swarm?.close();
});

// Run p1's second trial moves Y, every other trial moves X down the slope (a keep each).
const RESEARCH = `import { readFileSync, writeFileSync } from "node:fs";
const input = JSON.parse(readFileSync(0, "utf8"));
const src = readFileSync("train.mjs", "utf8");
if (input.tag === "p1" && input.trial === 2) {
  writeFileSync("train.mjs", src.replace("const Y = 0.5;", "const Y = 0.25;"));
  console.log(JSON.stringify({ title: "Y 0.5 to 0.25", hypothesis: "closer" }));
} else {
  const x = Number(/const X = ([\\d.-]+);/.exec(src)[1]);
  writeFileSync("train.mjs", src.replace(/const X = [\\d.-]+;/, "const X = " + (x + 0.25) + ";"));
  console.log(JSON.stringify({ title: "X " + x + " to " + (x + 0.25), hypothesis: "closer" }));
}
`;

it("names and measures each of a host's keeps apart, though two runs numbered them alike", async () => {
  swarm = await swarmFixture(["a", "b"], { init: false });
  const yaml = [
    "stages:",
    "  - { name: short }",
    "  - { name: long, env: { STAGE_SIZE: '2' } }",
    "promote_every: 3",
  ].join("\n");
  const task = await initSwarmTask(swarm, { yaml, research: RESEARCH });
  expect(task.init.code, task.init.stderr).toBe(0);
  const run = (dir: string, host: string, tag: string, trials: number, stages: string) => {
    const { url, env } = task.login(host);
    const flags = ["--tag", tag, "--max-trials", String(trials), "--lookahead", "0"];
    return runCli(["run", ...flags, "--swarm", url, "--stages", stages], { cwd: dir, env });
  };
  const a = task.clone("a");
  const b = task.clone("b");
  // a keeps #1 and #2 in p1 (line versions 1, 2), then in p2 adopts them and keeps #2 (3).
  expect((await run(a, "a", "p1", 3, "short")).code).toBe(0);
  const second = await run(a, "a", "p2", 3, "short");
  expect(second.code).toBe(0);
  expect(second.stdout).not.toMatch(/is not the swarm's base/);
  // Each of a host's runs has a seed of its own, so the second does not propose the first's
  // changes again.
  const seeds = Ledger.open(a);
  try {
    expect(seeds.run("p1")!.seed).not.toBe(seeds.run("p2")!.seed);
  } finally {
    seeds.close();
  }
  // b adopts version 3 and promotes it, from a checkout with a commit of its own: the run
  // starts from the swarm's base all the same, and says so.
  sh(b, "git commit -q --allow-empty -m 'a local commit'");
  const promoted = await run(b, "b", "q", 4, "short,long");
  expect(promoted.code, promoted.stderr).toBe(0);
  expect(promoted.stdout).toMatch(
    /this checkout's HEAD [0-9a-f]{7} is not the swarm's base [0-9a-f]{7}: the run starts from the base/,
  );

  const [job] = await swarm.owner.promotions();
  expect(job, promoted.stdout).toMatchObject({ state: "done", version: 3 });
  const rows = (job!.transfer as TransferTable).rows;
  expect(rows.map(changeName)).toEqual(["#1 of a/p1", "#2 of a/p1", "#2 of a/p2"]);
  expect(rows.map((r) => r.title)).toEqual(["X 1 to 1.25", "Y 0.5 to 0.25", "X 1.25 to 1.5"]);
  // The first X change cannot be taken out alone (the later one edits its line); the other
  // two each have an evaluation arm of their own.
  expect(rows.map((r) => r.atStage === null)).toEqual([true, false, false]);
  // Its effect is in the stacked one and in no single one: additivity cannot be told.
  expect((job!.transfer as TransferTable).additive).toBeNull();
  const ledger = Ledger.open(b);
  try {
    const [local] = promotions.list(ledger, ledger.run("q")!.id);
    const arms = ledger.db
      .prepare(
        "SELECT DISTINCT label FROM evaluations WHERE promotion_id = ? AND label LIKE 'without%'",
      )
      .all(local!.id) as { label: string }[];
    expect(arms.length).toBe(2);
  } finally {
    ledger.close();
  }
}, 300_000);
