/**
 * The swarm's research speed: does a swarm of four hosts find what one host finds, in a
 * quarter of the time, without each host doing less?
 *
 * A noisy synthetic landscape (the `quadratic` of research.ts: five parameters, true loss
 * known and printed beside the noisy one), each replicate standing for a training run of
 * `replicate_s` seconds. Per repeat:
 * - solo: one host, a run of its own, `trials` trials (mutate, confirm judge);
 * - swarm: a fresh swarm (PostgreSQL here, a `git daemon` remote), four hosts (separate
 *   clones, separate processes of the built CLI) without a trial limit, stopped once the
 *   line's true loss reaches the solo run's final true loss, or at the solo run's wall time.
 * - crowd: four solo runs at once, on seeds of their own, sharing this machine's cores as
 *   the swarm's four hosts do.
 * Reported: the swarm's time to reach the solo run's final true loss over the solo run's
 * wall time (target ≤ 0.35), and experiments (trials that ran replicates) per host-hour
 * in the swarm over solo (target ≥ 0.90), and over the crowd's.
 *
 *   npm run build && npm run bench -- swarm-research [repeats=3] [trials=30] [replicate_s=3]
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { Ledger } from "../src/ledger/ledger.js";
import { SwarmClient } from "../src/swarm/index.js";
import { freePort, startCluster } from "../test/helpers/pg-cluster.js";
import { LANDSCAPES, NOISE } from "./landscapes.js";

const REPEATS = Number(process.argv[2] ?? 3);
const TRIALS = Number(process.argv[3] ?? 30);
const REPLICATE_S = Number(process.argv[4] ?? 3);
const HOSTS = ["host_1", "host_2", "host_3", "host_4"];
const PASSWORD = "bench-only-password";
const CLI = join(import.meta.dirname, "..", "dist", "cli", "main.js");

// The quadratic landscape, each replicate standing for a training run of REPLICATE_S.
const SOURCE = `${LANDSCAPES.find((l) => l.name === "quadratic")!.source}await new Promise((r) => setTimeout(r, ${REPLICATE_S * 1000}));
${NOISE}`;

const sh = (cwd: string, command: string) =>
  execFileSync("/bin/sh", ["-c", command], { cwd, encoding: "utf8" });

function task(seed: number): string {
  const root = mkdtempSync(join(tmpdir(), "ar-swarm-research-"));
  writeFileSync(
    join(root, "autoresearch.yaml"),
    [
      "name: quadratic",
      "editable: [train.mjs]",
      "run: node train.mjs",
      "budget: 5s",
      "metric: { name: loss, goal: minimize }",
      "secondary: [true_loss]",
      "judge: { policy: confirm }",
      `seed: ${seed}`,
    ].join("\n"),
  );
  writeFileSync(join(root, "train.mjs"), SOURCE);
  sh(root, "git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm task");
  return root;
}

function cli(cwd: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

const ended = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.on("close", () => resolve());
  });

/** Trials that ran replicates, and the incumbent's true loss, of a host's run. */
function summary(root: string, tag: string) {
  const ledger = Ledger.open(root);
  try {
    const trials = ledger.trials(ledger.run(tag)!.id);
    const incumbent = trials.filter((t) => t.verdict === "keep").at(-1)!;
    const ran = trials.filter((t) => ledger.replicates(t.id).length > 0);
    return {
      ran: ran.length,
      replicates: ran.reduce((a, t) => a + ledger.replicates(t.id).length, 0),
      adopted: trials.filter((t) => t.researcher === "swarm").length,
      notRun: trials.filter((t) => t.reason?.startsWith("not run:")).length,
      lineRefused: trials.filter((t) => t.reason?.includes("the swarm's line moved first")).length,
      carried: trials.filter((t) => t.rebaseOf !== null).length,
      kept: trials.filter((t) => t.verdict === "keep" && t.researcher !== "swarm").length,
      trueLoss: incumbent.metrics.true_loss!,
    };
  } finally {
    ledger.close();
  }
}

async function solo(seed: number) {
  const root = task(seed);
  const started = Date.now();
  await ended(
    cli(root, ["run", "--tag", "solo", "--max-trials", String(TRIALS), "--sandbox", "none"]),
  );
  const seconds = (Date.now() - started) / 1000;
  const s = summary(root, "solo");
  rmSync(root, { recursive: true, force: true });
  return { seconds, ...s, perHour: (s.ran / seconds) * 3600 };
}

/**
 * As many solo runs at once as the swarm has hosts, each on its own task and seed: trials
 * per host-hour when the hosts share this machine's cores, as the swarm's hosts do here
 * (in a real swarm each host has its own machine). Against it, the rate ratio counts what
 * the swarm's coordination costs, without the cost of sharing cores.
 */
async function crowd(seed: number) {
  const runs = await Promise.all(HOSTS.map((_, i) => solo(seed * 100 + i)));
  return {
    perHour: runs.reduce((a, r) => a + r.perHour, 0) / runs.length,
    seconds: runs.map((r) => r.seconds),
  };
}

const cluster = await startCluster({ fsync: true });
await cluster.admin(
  [
    `CREATE ROLE swarm_owner LOGIN PASSWORD '${PASSWORD}'`,
    "CREATE ROLE swarm_hosts NOLOGIN",
    ...HOSTS.map((h) => `CREATE ROLE ${h} LOGIN PASSWORD '${PASSWORD}' IN ROLE swarm_hosts`),
  ].join(";\n"),
);
const daemonBase = mkdtempSync(join(tmpdir(), "ar-swarm-remote-"));
const daemonPort = await freePort();
const daemon = spawn(
  "git",
  [
    "daemon",
    "--reuseaddr",
    "--export-all",
    "--enable=receive-pack",
    `--base-path=${daemonBase}`,
    "--listen=127.0.0.1",
    `--port=${daemonPort}`,
  ],
  { stdio: "ignore" },
);
await new Promise((r) => setTimeout(r, 500));

async function swarm(seed: number, target: number, repeat: number, limitS: number) {
  const db = `research_${repeat}`;
  await cluster.admin(`CREATE DATABASE ${db} OWNER swarm_owner`);
  const name = `task_${repeat}.git`;
  sh(daemonBase, `git init -q --bare ${name}`);
  const remote = `git://127.0.0.1:${daemonPort}/${name}`;
  const origin = task(seed);
  const ownerUrl = cluster.url("swarm_owner", PASSWORD, db);
  await ended(
    cli(origin, [
      "swarm",
      "init",
      "--database",
      ownerUrl,
      "--remote",
      remote,
      "--hosts-role",
      "swarm_hosts",
    ]),
  );
  const clones = HOSTS.map((h) => {
    const dir = join(origin, "..", `${h}-${repeat}-${process.pid}`);
    mkdirSync(dir);
    sh(dir, `git clone -q -b autoresearch-swarm ${remote} .`);
    return dir;
  });
  const owner = await SwarmClient.connect(ownerUrl);
  const started = Date.now();
  const children = HOSTS.map((h, i) =>
    cli(
      clones[i]!,
      [
        "run",
        "--tag",
        "swarm",
        "--sandbox",
        "none",
        "--swarm",
        `postgres://${h}@127.0.0.1:${cluster.port}/${db}`,
      ],
      { PGPASSWORD: PASSWORD },
    ),
  );
  const all = Promise.all(children.map(ended));
  let reached: number | null = null;
  let done = false;
  void all.then(() => {
    done = true;
  });
  while (!done && reached === null && (Date.now() - started) / 1000 < limitS) {
    await new Promise((r) => setTimeout(r, 500));
    const line = (await owner.history()).trials.filter((t) => t.verdict === "keep" && !t.baseline);
    if (line.some((t) => (t.metrics.true_loss ?? Infinity) <= target))
      reached = (Date.now() - started) / 1000;
  }
  const seconds = (Date.now() - started) / 1000;
  for (const child of children) child.kill("SIGINT");
  await all;
  await owner.close();
  const hosts = clones.map((dir) => summary(dir, "swarm"));
  if (!process.env.KEEP)
    for (const dir of [origin, ...clones]) rmSync(dir, { recursive: true, force: true });
  else console.log(JSON.stringify({ clones, hosts }));
  const ran = hosts.reduce((a, h) => a + h.ran, 0);
  const total = (key: "adopted" | "notRun" | "lineRefused" | "carried" | "kept") =>
    hosts.reduce((a, h) => a + h[key], 0);
  return {
    seconds,
    reached,
    ran,
    adopted: total("adopted"),
    notRun: total("notRun"),
    lineRefused: total("lineRefused"),
    carried: total("carried"),
    kept: total("kept"),
    perHostHour: (ran / HOSTS.length / seconds) * 3600,
    best: Math.min(...hosts.map((h) => h.trueLoss)),
  };
}

const results = [];
for (let repeat = 1; repeat <= REPEATS; repeat++) {
  const seed = repeat;
  const one = await solo(seed);
  const many = await swarm(seed, one.trueLoss, repeat, one.seconds);
  const shared = await crowd(seed);
  const row = {
    seed,
    solo: one,
    swarm: many,
    crowd: shared,
    time_ratio: many.reached === null ? null : Number((many.reached / one.seconds).toFixed(3)),
    rate_ratio: Number((many.perHostHour / one.perHour).toFixed(3)),
    rate_ratio_crowd: Number((many.perHostHour / shared.perHour).toFixed(3)),
  };
  console.log(JSON.stringify(row));
  results.push(row);
}
daemon.kill();
cluster.destroy();
rmSync(daemonBase, { recursive: true, force: true });

const date = new Date().toISOString().slice(0, 10);
const file = join(import.meta.dirname, "results", `swarm-research-${date}.json`);
writeFileSync(
  file,
  `${JSON.stringify(
    {
      date,
      machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
      hosts: HOSTS.length,
      trials: TRIALS,
      replicate_s: REPLICATE_S,
      results,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${file}`);
