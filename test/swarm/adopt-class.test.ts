/**
 * A class measures each head of the line once, also when two of its hosts see the head at
 * the same moment: one measures it under a claim, the other waits for that measurement,
 * trying changes on the head meanwhile, and judges them against it once it has come.
 */
import { afterAll, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { ADOPTER } from "../../src/ledger/types.js";
import { startCli, waitFor } from "../helpers.js";
import { initSwarmTask, keepOnBase, type SwarmFixture, swarmFixture } from "./fixture.js";
import { watched } from "./host-process.js";

let swarm: SwarmFixture | undefined;
afterAll(async () => {
  await swarm?.close();
});

// Every change is a larger Y, each of its own: worse, so that only the keeper moves the line.
const RESEARCH = `import { readFileSync, writeFileSync } from "node:fs";
const y = (1 + Math.random()).toFixed(6);
const src = readFileSync("train.mjs", "utf8");
writeFileSync("train.mjs", src.replace(/const Y = [\\d.-]+;/, "const Y = " + y + ";"));
console.log(JSON.stringify({ title: "Y to " + y, hypothesis: "a larger Y" }));
`;

it("two hosts of a class that adopt a head at once measure it once", async () => {
  swarm = await swarmFixture(["a", "b", "c"], { init: false });
  const task = await initSwarmTask(swarm, { research: RESEARCH });
  expect(task.init.code, task.init.stderr).toBe(0);
  const dirs = { a: task.clone("a"), b: task.clone("b") };
  const start = (host: "a" | "b") => {
    const { url, env } = task.login(host);
    const child = startCli(
      [
        ...["run", "--tag", "r", "--max-trials", "10", "--lookahead", "0"],
        ...["--hardware-class", "cpu-x", "--swarm", url],
      ],
      dirs[host],
      { ...env, TEST_SLEEP_S: "1" },
    );
    return { child, host: watched(child) };
  };
  let head = "";
  const a = start("a");
  let b: ReturnType<typeof start> | undefined;
  try {
    // b joins once a has measured the baseline, and takes it.
    await waitFor(() => /#1 proposing/.test(a.child.out), 60_000, "a's first proposal");
    const started = start("b");
    b = started;
    await waitFor(() => /#1 proposing/.test(started.child.out), 60_000, "b's first proposal");

    // c, of another class, keeps X at its best; its code (Y unchanged) measures for 8 s
    // more, so that both hosts begin adopting it long before either has measured it.
    head = await keepOnBase(swarm, task, {
      host: "c",
      hardwareClass: "cpu-y",
      title: "X to 3",
      metric: 0.5,
      edit: (train) =>
        train
          .replace(/const X = [\d.-]+;/, "const X = 3;")
          .replace(
            'console.log("training...");',
            'if (Y === 0.5) await new Promise((r) => setTimeout(r, 8000));\nconsole.log("training...");',
          ),
    });

    const codes = await Promise.all([a.host.within(180_000), started.host.within(180_000)]);
    expect(codes, `${a.child.out}\n----\n${started.child.out}`).toEqual([0, 0]);
  } finally {
    a.child.kill("SIGKILL");
    b?.child.kill("SIGKILL");
  }

  // Each host's ledger records its adoption of the head, kept with one measurement: one
  // host ran it, the other took that host's value.
  const adoptions = (["a", "b"] as const).map((host) => {
    const ledger = Ledger.open(dirs[host]);
    try {
      const trial = ledger.trials(ledger.run("r")!.id).find((t) => t.researcher === ADOPTER)!;
      return { host, trial, replicates: ledger.replicates(trial.id).length };
    } finally {
      ledger.close();
    }
  });
  const out = { a: a.child.out, b: b!.child.out };
  expect(
    adoptions.map((x) => x.replicates).sort(),
    JSON.stringify(adoptions.map((x) => [x.host, x.trial.reason])),
  ).toEqual([0, 1]);
  const [waiter, measurer] = adoptions.sort((x, y) => x.replicates - y.replicates) as [
    (typeof adoptions)[number],
    (typeof adoptions)[number],
  ];
  for (const { trial } of adoptions)
    expect(trial).toMatchObject({ verdict: "keep", metric: 0.5, title: "X to 3 (adopted from c)" });
  expect(waiter.trial.reason).toBe(`measured on cpu-x by ${measurer.host}`);
  expect(out[waiter.host]).toContain(
    `swarm: host ${measurer.host} is measuring host c's keep "X to 3" on cpu-x: this host takes its measurement rather than run the same code again (waiting up to 320 s, trying changes meanwhile)`,
  );

  // The waiter tried changes on the head while it waited, judged against the measurement.
  const ledger = Ledger.open(dirs[waiter.host]);
  try {
    const trials = ledger.trials(ledger.run("r")!.id);
    const beside = trials.filter(
      (t) =>
        t.n > waiter.trial.n &&
        ledger.replicates(t.id).some((r) => r.runningAt! < waiter.trial.finishedAt!),
    );
    expect(beside.length, JSON.stringify(trials.map((t) => [t.n, t.reason]))).toBeGreaterThan(0);
    for (const trial of beside) {
      expect(trial).toMatchObject({ parentCommit: head, incumbentMetric: 0.5 });
      expect(trial.verdict).toBe("discard");
      expect(out[waiter.host]).toContain(
        `#${trial.n} measured: judged once the adopted head's measurement has ended`,
      );
    }
  } finally {
    ledger.close();
  }

  // The swarm holds both hosts' adoptions, with the one value.
  const { trials } = await swarm.owner.history();
  const ofHead = trials.filter((t) => t.commitSha === head && t.hardwareClass === "cpu-x");
  expect(ofHead.map((t) => `${t.host} ${t.verdict} ${t.metric}`).sort()).toEqual([
    "a keep 0.5",
    "b keep 0.5",
  ]);
}, 300_000);
