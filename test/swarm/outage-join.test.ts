/**
 * Joining while the swarm's database is down: a run that joined before waits for it (a
 * lab's machines restarting together), a first join fails at once (a mistyped address
 * would otherwise be waited on), and `swarm init` run again is refused without touching
 * the remote.
 */
import { afterAll, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { storedSwarm } from "../../src/orchestrator/run/session.js";
import { freePort } from "../helpers/pg-cluster.js";
import { QUADRATIC_YAML, runCli, sh } from "../helpers.js";
import { initSwarmTask, type SwarmFixture, swarmFixture } from "./fixture.js";

let swarm: SwarmFixture | undefined;
afterAll(async () => {
  await swarm?.close();
});

it("resume waits out a database that is down; a first join and init again do not", async () => {
  swarm = await swarmFixture(["a", "b"], { init: false });
  const yaml = [...QUADRATIC_YAML, "judge: { policy: greedy }"].join("\n");
  const task = await initSwarmTask(swarm, { yaml });
  expect(task.init.code, task.init.stderr).toBe(0);
  const a = task.clone("a");
  const login = task.login("a");
  const first = await runCli(
    ["run", "--tag", "r", "--max-trials", "2", "--lookahead", "0", "--swarm", login.url],
    { cwd: a, env: login.env },
  );
  expect(first.code, first.stderr).toBe(0);
  const base = sh(task.bare, "git rev-parse refs/autoresearch-swarm/base");

  swarm.cluster.stop("fast");
  try {
    // A host that never joined: said at once, naming the database.
    const b = task.clone("b");
    const loginB = task.login("b");
    const fresh = await runCli(["run", "--tag", "r", "--max-trials", "2", "--swarm", loginB.url], {
      cwd: b,
      env: loginB.env,
      timeoutMs: 30_000,
    });
    expect(fresh.code).not.toBe(0);
    expect(fresh.stderr).toMatch(/is unreachable/);

    // init again, from a checkout that has moved on: refused, the base on the remote kept.
    sh(task.origin, "git commit -q --allow-empty -m later");
    const again = await runCli([
      ...["swarm", "init", "-C", task.origin, "--database", swarm.ownerUrl],
      ...["--remote", task.remote, "--hosts-role", "swarm_hosts"],
    ]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/is unreachable/);
    expect(sh(task.bare, "git rev-parse refs/autoresearch-swarm/base")).toBe(base);

    // Ctrl-C while it waits: a stop like any other.
    const stopped = await runCli(["resume", "--tag", "r"], {
      cwd: a,
      env: login.env,
      interruptWhen: /waiting for it with backoff/,
    });
    expect(stopped.code, stopped.stdout + stopped.stderr).toBe(130);
    expect(stopped.stderr).not.toMatch(/unreachable \(connect\)/);
    const afterStop = Ledger.open(a);
    try {
      const run = afterStop.run("r")!;
      expect(run.status).toBe("stopped");
      const ends = afterStop.events(run.id).filter((e) => e.kind === "run-end");
      expect(ends.at(-1)?.data).toMatchObject({ status: "stopped" });
    } finally {
      afterStop.close();
    }

    // A URL the run never joined through, mistyped: said at once, and not kept for the
    // resumes after it.
    const typo = new URL(login.url);
    typo.port = String(await freePort());
    const mistyped = await runCli(["resume", "--tag", "r", "--swarm", typo.toString()], {
      cwd: a,
      env: login.env,
      timeoutMs: 30_000,
    });
    expect(mistyped.code).not.toBe(0);
    expect(mistyped.stderr).toMatch(/is unreachable/);
    expect(mistyped.stdout + mistyped.stderr).not.toMatch(/waiting for it with backoff/);
    const kept = Ledger.open(a);
    try {
      expect(storedSwarm(kept, kept.run("r")!)?.url).toBe(login.url);
    } finally {
      kept.close();
    }

    // The host that joined before waits, and goes on once the database is back.
    let waited = false;
    const resumed = await runCli(["resume", "--tag", "r", "--max-trials", "4"], {
      cwd: a,
      env: login.env,
      timeoutMs: 90_000,
      watch: (output) => {
        if (waited || !/waiting for it with backoff/.test(output)) return;
        waited = true;
        setTimeout(() => swarm!.cluster.start(), 2_000);
      },
    });
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(resumed.stdout + resumed.stderr).toMatch(/unreachable.*waiting for it with backoff/);
    expect(resumed.stdout).toMatch(/joined/);
  } finally {
    swarm.cluster.start();
  }
  const ledger = Ledger.open(a);
  try {
    const trials = ledger.trials(ledger.run("r")!.id);
    expect(trials.length).toBe(4);
    // Every trial of the host is in the database once.
    const { trials: shared } = await swarm.owner.history();
    expect(shared.filter((t) => t.host === "a").length).toBe(4);
  } finally {
    ledger.close();
  }
}, 240_000);
