/**
 * The swarm's coordination under many hosts: N simulated hosts against one PostgreSQL
 * started here (fsync on, as a lab's server would run), each with its own database role
 * and its own connection, as real hosts have. A trial is a no-op: what is measured is
 * the database's part of one, the claim, the upload (which releases the claim) and, for
 * a keep, the incumbent's compare-and-swap at the version the host last knew.
 *
 * - saturation: every host loops claim → upload → (one time in five) compare-and-swap
 *   with no pause, for `seconds`, at each N: trials recorded per second at the most.
 * - paced: the largest N at fixed rates of trials (the target, 1,000 hosts at one trial
 *   per five minutes each, is 3.3 trials/s), each host holding one claim open as a host
 *   running a trial does, and sending a heartbeat every 30 s. Trials end as a Poisson
 *   process; the host whose trial ends uploads it, maybe swaps, and claims its next.
 *
 *   npm run bench -- swarm [sizes=10,100,1000] [seconds=20] [rates=3.3,33,100]
 */
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { SwarmClient } from "../src/swarm/index.js";
import { startCluster } from "../test/helpers/pg-cluster.js";

const SIZES = (process.argv[2] ?? "10,100,1000").split(",").map(Number);
const SECONDS = Number(process.argv[3] ?? 20);
const RATES = (process.argv[4] ?? "3.3,33,100").split(",").map(Number);
const MAX = Math.max(...SIZES);
const PASSWORD = "bench-only-password";
const TASK = {
  taskHash: "bench",
  taskFile: "name: bench\n",
  metric: "loss",
  goal: "minimize",
} as const;
const CLASSES = ["h100", "rtx4090"];

const quantile = (xs: number[], q: number) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Number(s[Math.min(s.length - 1, Math.floor(q * s.length))]!.toFixed(1));
};
const summary = (xs: number[]) => ({
  n: xs.length,
  p50_ms: quantile(xs, 0.5),
  p99_ms: quantile(xs, 0.99),
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Host {
  client: SwarmClient;
  hardwareClass: string;
  known: number;
  n: number;
  claim?: number;
}

interface Sample {
  claim: number[];
  upload: number[];
  cas: number[];
  casWins: number;
  refused: number;
  errors: number;
}

const cluster = await startCluster({
  fsync: true,
  maxConnections: MAX + 20,
  settings: { shared_buffers: "256MB" },
});
let round = 0;

/** A fresh database for one run: roles host_1..host_n joined, one connection each. */
async function hosts(n: number): Promise<Host[]> {
  const db = `swarm_${++round}`;
  await cluster.admin(`CREATE DATABASE ${db} OWNER swarm_owner`);
  const owner = await SwarmClient.connect(cluster.url("swarm_owner", PASSWORD, db));
  await owner.init(TASK, { hostsRole: "swarm_hosts" });
  await owner.close();
  const out: Host[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, async (_, k) => {
      const name = `host_${i + k + 1}`;
      const hardwareClass = CLASSES[(i + k) % CLASSES.length]!;
      const client = await SwarmClient.connect(cluster.url(name, PASSWORD, db), { poolSize: 1 });
      await client.join({ ...TASK, hardwareClass, stages: [], slots: 1 });
      return { client, hardwareClass, known: 0, n: 0 };
    });
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/** One trial's database work: the upload (releasing the claim), maybe a swap, the next claim. */
async function finish(host: Host, name: string, s: Sample): Promise<void> {
  const keep = Math.random() < 0.2;
  let t = performance.now();
  const up = await host.client.recordTrial(
    {
      uid: `${name}-${++host.n}`,
      diffHash: `${name}-${host.n}`,
      hardwareClass: host.hardwareClass,
      verdict: keep ? "keep" : "discard",
      metric: Math.random(),
    },
    { releaseClaim: host.claim },
  );
  s.upload.push(performance.now() - t);
  if (keep) {
    t = performance.now();
    const r = await host.client.cas(host.hardwareClass, host.known, up.id);
    s.cas.push(performance.now() - t);
    host.known = r.version;
    if (r.ok) s.casWins++;
  }
  t = performance.now();
  const c = await host.client.claim({ diffHash: `${name}-${host.n + 1}` }, 600);
  s.claim.push(performance.now() - t);
  host.claim = c.ok ? c.id : undefined;
  if (!c.ok) s.refused++;
}

const sample = (): Sample => ({
  claim: [],
  upload: [],
  cas: [],
  casWins: 0,
  refused: 0,
  errors: 0,
});

async function saturation(n: number) {
  const all = await hosts(n);
  const s = sample();
  const end = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    all.map(async (h, i) => {
      while (performance.now() < end) await finish(h, `h${i}`, s).catch(() => s.errors++);
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await Promise.all(all.map((h) => h.client.close()));
  return report({ mode: "saturation", hosts: n, seconds: elapsed }, s);
}

async function paced(n: number, rate: number) {
  const all = await hosts(n);
  const s = sample();
  // Every host holds a claim, as one running a trial does.
  await Promise.all(
    all.map((h, i) =>
      h.client.claim({ diffHash: `h${i}-1` }, 600).then((c) => {
        h.claim = c.ok ? c.id : undefined;
      }),
    ),
  );
  const beats: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  const started = performance.now();
  const busy = new Set<number>();
  const work: Promise<void>[] = [];
  const heartbeats = all.map(async (h, i) => {
    await sleep(Math.random() * Math.min(30_000, SECONDS * 1000));
    while (performance.now() < end) {
      const t = performance.now();
      busy.add(i);
      await h.client.heartbeat().catch(() => s.errors++);
      busy.delete(i);
      beats.push(performance.now() - t);
      await sleep(Math.max(0, Math.min(30_000, end - performance.now())));
    }
  });
  while (performance.now() < end) {
    await sleep(-Math.log(1 - Math.random()) * (1000 / rate));
    let i = Math.floor(Math.random() * n);
    while (busy.has(i)) i = (i + 1) % n;
    busy.add(i);
    work.push(
      finish(all[i]!, `h${i}`, s)
        .catch(() => void s.errors++)
        .finally(() => busy.delete(i)),
    );
  }
  await Promise.all(work);
  const elapsed = (performance.now() - started) / 1000;
  await Promise.all(heartbeats);
  await Promise.all(all.map((h) => h.client.close()));
  return {
    ...report({ mode: "paced", hosts: n, target_rate: rate, seconds: elapsed }, s),
    heartbeat: summary(beats),
  };
}

function report(head: Record<string, number | string>, s: Sample) {
  const seconds = Number(head.seconds);
  const r = {
    ...head,
    seconds: Number(seconds.toFixed(1)),
    trials_per_s: Number((s.upload.length / seconds).toFixed(1)),
    claim: summary(s.claim),
    upload: summary(s.upload),
    cas: summary(s.cas),
    cas_wins: s.casWins,
    claims_refused: s.refused,
    errors: s.errors,
  };
  console.log(JSON.stringify(r));
  return r;
}

try {
  await cluster.admin(`
    CREATE ROLE swarm_owner LOGIN PASSWORD '${PASSWORD}';
    CREATE ROLE swarm_hosts NOLOGIN;
    DO $$ BEGIN FOR i IN 1..${MAX} LOOP
      EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE swarm_hosts', 'host_' || i, '${PASSWORD}');
    END LOOP; END $$;`);
  const runs = [];
  for (const n of SIZES) runs.push(await saturation(n));
  for (const rate of RATES) runs.push(await paced(MAX, rate));
  const result = {
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
    postgres: cluster.version,
    settings: {
      fsync: "on",
      max_connections: MAX + 20,
      shared_buffers: "256MB",
      connection_per_host: 1,
    },
    runs,
  };
  const out = join(import.meta.dirname, "results", `swarm-${result.date.slice(0, 10)}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`written to ${out}`);
} finally {
  cluster.destroy();
}
