/** A remote that refuses this host's pushes stops its run, with git's answer, nothing lost. */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { runCli } from "../helpers.js";
import { initSwarmTask, type SwarmFixture, swarmFixture } from "./fixture.js";

let swarm: SwarmFixture | undefined;
afterAll(async () => {
  await swarm?.close();
});

it("stops a host whose pushes the remote refuses, saying what git said", async () => {
  swarm = await swarmFixture(["solo"], { init: false });
  const task = await initSwarmTask(swarm);
  expect(task.init.stderr).toBe("");
  // From now on the remote takes no push.
  const hook = join(task.bare, "hooks", "pre-receive");
  writeFileSync(hook, "#!/bin/sh\necho 'pushes are closed' >&2\nexit 1\n");
  chmodSync(hook, 0o755);
  const clone = task.clone("solo");
  const { url, env } = task.login("solo");
  const run = await runCli(["run", "--tag", "r", "--max-trials", "8", "--swarm", url], {
    cwd: clone,
    env,
  });
  // 9 when a keep's own push was refused, 1 when a background upload's was first.
  expect([1, 9]).toContain(run.code);
  expect(run.stdout + run.stderr).toMatch(
    /could not push #\d+ to the swarm's remote .*pushes are closed/,
  );
  // It stopped at the refusal, not at its trial limit, and recorded every trial it ran.
  const ledger = Ledger.open(clone);
  const trials = ledger.trials(ledger.run("r")!.id);
  ledger.close();
  expect(trials.length).toBeLessThan(8);
  expect(trials.every((t) => t.state === "done")).toBe(true);
}, 120_000);
