import { rmSync, statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Ledger } from "../src/ledger/ledger.js";
import { startRun } from "../src/orchestrator/index.js";
import { noOpTask } from "./no-op-task.js";

const SIZES = (process.argv[2] ?? "10000,50000").split(",").map(Number);

function makeTask(): string {
  return noOpTask("ar-bench-check-", "A = 0.1\nB = 0.2\n");
}

const columns = (db: Database.Database, table: string, leave: string[]) =>
  (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[])
    .map((c) => c.name)
    .filter((name) => !leave.includes(name));

/** Copies of the run's last finished trial and its rows, until the run has `size` trials. */
function pad(root: string, size: number, heavy: boolean): void {
  const db = new Database(join(root, ".autoresearch", "ledger.db"));
  const trial = columns(db, "trials", ["id", "n"]);
  const replicate = columns(db, "replicates", ["id", "trial_id", "idx", "log_tail"]);
  const proposal = columns(db, "proposals", ["trial_id", "detail_json"]);
  const event = columns(db, "events", ["id", "trial_id"]);
  const { last, source } = db
    .prepare(
      "SELECT MAX(n) AS last, (SELECT id FROM trials WHERE state = 'done' AND baseline = 0 ORDER BY n DESC LIMIT 1) AS source FROM trials",
    )
    .get() as { last: number; source: number };
  const copyTrial = db.prepare(
    `INSERT INTO trials (n, ${trial}) SELECT ?, ${trial} FROM trials WHERE id = ?`,
  );
  const copyReplicate = db.prepare(
    `INSERT INTO replicates (trial_id, idx, log_tail, ${replicate}) SELECT ?, ?, coalesce(?, log_tail), ${replicate} FROM replicates WHERE trial_id = ? AND idx = 0`,
  );
  const copyProposal = db.prepare(
    `INSERT INTO proposals (trial_id, detail_json, ${proposal}) SELECT ?, coalesce(?, detail_json), ${proposal} FROM proposals WHERE trial_id = ?`,
  );
  const copyEvents = db.prepare(
    `INSERT INTO events (trial_id, ${event}) SELECT ?, ${event} FROM events WHERE trial_id = ?`,
  );
  const line = (i: number) => `step ${i} loss 3.${i}1234 lr 0.0006 tok/s 91234 mfu 41.2%`;
  const tail = heavy ? Array.from({ length: 30 }, (_, i) => line(i)).join("\n") : null;
  const detail = heavy ? JSON.stringify({ edit: "x".repeat(4000) }) : null;
  db.transaction(() => {
    for (let n = last + 1; n < size; n++) {
      const id = Number(copyTrial.run(n, source).lastInsertRowid);
      for (let idx = 0; idx < (heavy ? 3 : 1); idx++) copyReplicate.run(id, idx, tail, source);
      copyProposal.run(id, detail, source);
      copyEvents.run(id, source);
    }
  })();
  db.close();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const timed = (work: () => void) => {
  const start = performance.now();
  work();
  return performance.now() - start;
};
const ms = (work: () => void) => Math.round(median([0, 1, 2].map(() => timed(work))));

const rows = [];
for (const heavy of [false, true]) {
  const root = makeTask();
  try {
    await startRun({
      root,
      tag: "c",
      researcher: "mutate",
      maxTrials: 3,
      signal: new AbortController().signal,
      emit: () => undefined,
    });
    const path = Ledger.pathFor(root);
    for (const size of SIZES) {
      pad(root, size, heavy);
      const check = (pragma: string) => () => {
        const db = new Database(path, { readonly: true });
        db.pragma(pragma);
        db.close();
      };
      rows.push({
        ledger: heavy ? "heavy" : "lean",
        trials: size,
        file_mb: Math.round(statSync(path).size / 1e6),
        open_ms: ms(() => Ledger.open(root).close()),
        open_verified_ms: ms(() => Ledger.open(root, { verify: true }).close()),
        quick_check_ms: ms(check("quick_check(1)")),
        integrity_check_ms: ms(check("integrity_check(1)")),
      });
      console.log(JSON.stringify(rows.at(-1)));
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
const result = {
  date: new Date().toISOString(),
  machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, node ${process.version}`,
  rows,
};
const out = join(import.meta.dirname, "results", `ledger-check-${result.date.slice(0, 10)}.json`);
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`written to ${out}`);
