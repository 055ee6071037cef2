/**
 * A researcher leaves alone a change another host runs now: `mutate` sees the other hosts'
 * running changes by the titles it gives its own, and picks another, rather than make one
 * that the claim would then refuse.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { taskHash } from "../../src/orchestrator/swarm.js";
import { SwarmClient } from "../../src/swarm/index.js";
import { QUADRATIC_YAML, runCli } from "../helpers.js";
import { initSwarmTask, type SwarmFixture, type SwarmTask, swarmFixture } from "./fixture.js";

let swarm: SwarmFixture;
let task: SwarmTask;
let other: SwarmClient;
beforeAll(async () => {
  swarm = await swarmFixture(["a", "b"], { init: false });
  // Two changes can be made from X = 1, both worse (the line stays where it is).
  const yaml = [...QUADRATIC_YAML, "researcher: { params: [{ name: X, choices: [1, 0, -1] }] }"];
  task = await initSwarmTask(swarm, { yaml: yaml.join("\n") });
  expect(task.init.code, task.init.stderr).toBe(0);
  other = await SwarmClient.connect(swarm.hostUrl("b"));
  const taskFile = readFileSync(join(task.origin, "autoresearch.yaml"), "utf8");
  await other.join({
    taskHash: taskHash(taskFile),
    taskFile,
    hardwareClass: "cpu",
    stages: [],
    slots: 1,
  });
}, 120_000);
afterAll(async () => {
  await other?.close();
  await swarm?.close();
});

/** The title of the first proposal of a run of two trials in a new clone of the task. */
async function firstProposal(host: string, swarmArgs: string[], env: Record<string, string> = {}) {
  const dir = task.clone(host);
  const result = await runCli(["run", "--tag", "r", "--max-trials", "2", ...swarmArgs], {
    cwd: dir,
    env: { ...env, TEST_SLEEP_S: "3" },
  });
  expect(result.code, result.stderr).toBe(0);
  const ledger = Ledger.open(dir);
  const trials = ledger.trials(ledger.run("r")!.id);
  ledger.close();
  return trials.find((t) => !t.baseline)!;
}

it("is not proposed while another host runs it", async () => {
  // What the seeded choice is when nothing runs elsewhere: a run of its own.
  const chosen = (await firstProposal("alone", [])).title!;
  expect(["X 1 → 0", "X 1 → -1"]).toContain(chosen);
  // Host b runs that change (under a claim that holds no diff of a's, so that only the
  // researcher's choice can keep a off it); a's baseline takes longer than a poll of what
  // the other hosts run.
  const claim = await other.claim({ diffHash: "b's own diff" }, 120, chosen);
  expect(claim.ok).toBe(true);
  const { url, env } = task.login("a");
  const proposal = await firstProposal("a", ["--swarm", url, "--hardware-class", "cpu"], env);
  expect(proposal.title).not.toBe(chosen);
  expect(proposal.reason).not.toMatch(/^not run/);
}, 120_000);
