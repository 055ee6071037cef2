import { rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Ledger } from "../src/ledger/ledger.js";
import { resumeRun, startRun } from "../src/orchestrator/index.js";
import { noOpTask } from "./no-op-task.js";

const SIZES = (process.argv[2] ?? "1000,10000,50000").split(",").map(Number);
const MEASURED = Number(process.argv[3] ?? 20);

function makeTask(): string {
  const constants = Array.from({ length: 20 }, (_, i) => `CONST_${i} = ${(i + 1) * 0.01}`);
  return noOpTask("ar-bench-history-", `${constants.join("\n")}\n`);
}

/** Copies of the run's last finished trial, numbered on, until the run has `size` trials. */
function pad(root: string, size: number): void {
  const db = new Database(join(root, ".autoresearch", "ledger.db"));
  const columns = (db.prepare("PRAGMA table_info(trials)").all() as { name: string }[])
    .map((c) => c.name)
    .filter((name) => name !== "id" && name !== "n");
  const { last, source } = db
    .prepare(
      "SELECT MAX(n) AS last, (SELECT id FROM trials WHERE state = 'done' AND baseline = 0 ORDER BY n DESC LIMIT 1) AS source FROM trials",
    )
    .get() as { last: number; source: number };
  const copy = db.prepare(
    `INSERT INTO trials (n, ${columns.join(", ")}) SELECT ?, ${columns.join(", ")} FROM trials WHERE id = ?`,
  );
  db.transaction(() => {
    for (let n = last + 1; n < size; n++) copy.run(n, source);
  })();
  db.close();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const root = makeTask();
const quiet = { signal: new AbortController().signal, emit: () => undefined };
try {
  await startRun({ root, tag: "h", researcher: "mutate", maxTrials: MEASURED + 1, ...quiet });
  // The process's resident memory after each size: every fork copies its page tables, so a
  // larger process starts each git command and replicate more slowly.
  const rss = () => Math.round(process.memoryUsage().rss / 1e6);
  type Row = { trials_before: number; median_ms: number; rss_mb: number; heap_mb: number };
  const rows: (Row & Phases)[] = [];
  // Where a trial's time goes: before its replicate starts (proposal, worktree, commit),
  // the replicate (a fork and exec), and after it ends (judging, records, clean-up).
  type Phases = { before_ms: number; replicate_ms: number; after_ms: number };
  const measure = (from: number): { median_ms: number } & Phases => {
    const ledger = Ledger.open(root);
    const trials = ledger.trials(ledger.run("h")!.id).filter((t) => t.n >= from);
    const spans = trials.map((t) => {
      const replicates = ledger.replicates(t.id);
      const first = Math.min(...replicates.map((r) => r.startedAt));
      const last = Math.max(...replicates.map((r) => r.finishedAt!));
      const inside = replicates.reduce((sum, r) => sum + (r.finishedAt! - r.startedAt), 0);
      return { before: first - t.createdAt, replicate: inside, after: t.finishedAt! - last };
    });
    ledger.close();
    return {
      median_ms: median(trials.map((t) => t.finishedAt! - t.createdAt)),
      before_ms: median(spans.map((s) => s.before)),
      replicate_ms: median(spans.map((s) => s.replicate)),
      after_ms: median(spans.map((s) => s.after)),
    };
  };
  const heap = () => Math.round(process.memoryUsage().heapUsed / 1e6);
  rows.push({ trials_before: 1, ...measure(1), rss_mb: rss(), heap_mb: heap() });
  for (const size of SIZES) {
    pad(root, size);
    await resumeRun({ root, tag: "h", maxTrials: size + MEASURED, ...quiet });
    rows.push({ trials_before: size, ...measure(size), rss_mb: rss(), heap_mb: heap() });
    console.log(JSON.stringify(rows.at(-1)));
  }
  const base = rows.find((r) => r.trials_before === SIZES[0])!.median_ms;
  const result = {
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, node ${process.version}`,
    measured_per_size: MEASURED,
    rows: rows.map((r) => ({ ...r, ratio_to_first: Number((r.median_ms / base).toFixed(2)) })),
  };
  console.log(JSON.stringify(result, null, 2));
  const out = join(import.meta.dirname, "results", `history-${result.date.slice(0, 10)}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`written to ${out}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
