/**
 * An adoption stopped midway and resumed after another host of its class measured the
 * same head takes that measurement: a class measures each head once, resumes included.
 */
import { afterAll, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { runCli } from "../helpers.js";
import { initSwarmTask, type SwarmFixture, swarmFixture } from "./fixture.js";

let swarm: SwarmFixture | undefined;
afterAll(async () => {
  await swarm?.close();
});

// Every trial moves X a step down the slope: a keep each.
const RESEARCH = `import { readFileSync, writeFileSync } from "node:fs";
const src = readFileSync("train.mjs", "utf8");
const x = Number(/const X = ([\\d.-]+);/.exec(src)[1]);
writeFileSync("train.mjs", src.replace(/const X = [\\d.-]+;/, "const X = " + (x + 0.25) + ";"));
console.log(JSON.stringify({ title: "X " + x + " to " + (x + 0.25), hypothesis: "closer" }));
`;

it("takes the class's measurement of a head when it resumes an adoption", async () => {
  swarm = await swarmFixture(["a", "b", "c"], { init: false });
  const task = await initSwarmTask(swarm, { research: RESEARCH });
  expect(task.init.code, task.init.stderr).toBe(0);
  const dirs: Record<string, string> = {};
  const run = (host: string, args: string[], options: Parameters<typeof runCli>[1] = {}) => {
    const { url, env } = task.login(host);
    dirs[host] ??= task.clone(host);
    const swarmArgs = args[0] === "run" ? ["--swarm", url, "--lookahead", "0"] : [];
    return runCli([...args, ...swarmArgs], {
      ...options,
      cwd: dirs[host],
      env: { ...env, ...options.env },
    });
  };
  // a (class y) keeps a change: the line moves.
  const a = await run("a", ["run", "--tag", "r", "--max-trials", "2", "--hardware-class", "y"]);
  expect(a.code, a.stderr).toBe(0);
  // b (class x) is stopped while it measures that head.
  const b = await run("b", ["run", "--tag", "r", "--max-trials", "2", "--hardware-class", "x"], {
    env: { TEST_SLEEP_S: "3" },
    interruptWhen: /#1 replicate 0 running/,
  });
  expect(b.code, b.stdout + b.stderr).toBe(130);
  // c (class x) takes b's baseline and measures the head itself.
  const c = await run("c", ["run", "--tag", "r", "--max-trials", "2", "--hardware-class", "x"]);
  expect(c.code, c.stderr).toBe(0);
  const resumed = await run("b", ["resume", "--tag", "r"]);
  expect(resumed.code, resumed.stderr).toBe(0);

  const ledger = Ledger.open(dirs.b!);
  try {
    const adoption = ledger.trial(ledger.run("r")!.id, 1)!;
    expect(adoption).toMatchObject({ verdict: "keep", reason: "measured on x by c" });
    const ran = ledger.replicates(adoption.id).filter((r) => r.outcome === "ok");
    expect(ran).toHaveLength(0);
  } finally {
    ledger.close();
  }
}, 180_000);
