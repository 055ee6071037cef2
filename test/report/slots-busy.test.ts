import { once } from "node:events";
import { readdirSync, readFileSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { expect, it } from "vitest";
import { quadraticTask, runCli, startCli, waitFor } from "../helpers.js";

const HOURS_5 = 5 * 3600_000;

/** Moves everything the run recorded after `after` later by `ms`: a resume that came later. */
function resumedLater(root: string, after: number, ms: number): void {
  const db = new Database(join(root, ".autoresearch", "ledger.db"));
  try {
    db.transaction(() => {
      db.prepare("UPDATE events SET at = at + ? WHERE at > ?").run(ms, after);
      for (const column of ["started_at", "running_at", "finished_at"])
        db.prepare(`UPDATE replicates SET ${column} = ${column} + ? WHERE ${column} > ?`).run(
          ms,
          after,
        );
    })();
  } finally {
    db.close();
  }
}

/** What `status` and the report say of how busy the slots were. */
async function busyShares(root: string) {
  const status = await runCli(["status", "-C", root]);
  expect(status.code, status.stderr).toBe(0);
  const report = await runCli(["report", "-C", root]);
  expect(report.code, report.stderr).toBe(0);
  const html = readFileSync(join(root, ".autoresearch", "runs", "r", "report.html"), "utf8");
  const table = html.slice(html.indexOf("<h2>Slots</h2>"));
  return {
    status: /slots busy: (.*)/.exec(status.stdout)?.[1],
    report: [...table.matchAll(/<td class="num">([\d.]+%)<\/td><\/tr>/g)].map((m) => m[1]),
  };
}

it("slots busy counts only the time the run's sessions ran, not the hours between a stop and a resume", async () => {
  const root = quadraticTask();
  // Each replicate takes a second, so that the slots are busy a fair share of each session.
  const env = { TEST_SLEEP_S: "1" };
  const first = await runCli(["run", "--tag", "r", "-n", "3", "--slots", "2", "-C", root], {
    env,
  });
  expect(first.code, first.stderr).toBe(0);
  const between = Date.now();
  const second = await runCli(["resume", "--tag", "r", "-n", "6", "-C", root], { env });
  expect(second.code, second.stderr).toBe(0);

  const together = await busyShares(root);
  expect(together.status).toMatch(/^cpu0 \d+% \(\d+\) · cpu1 \d+% \(\d+\)$/);
  expect(together.report).toHaveLength(2);
  for (const share of together.report) expect(Number.parseFloat(share!)).toBeGreaterThan(10);

  // The same two sessions, the second five hours after the first: the same figures.
  resumedLater(root, between, HOURS_5);
  expect(await busyShares(root)).toEqual(together);
}, 120_000);

it("slots busy leaves out the hours between a kill and the resume, whose recovery is the resume's own work", async () => {
  const root = quadraticTask();
  const env = { TEST_SLEEP_S: "1" };
  const killed = startCli(["run", "--tag", "r", "-n", "20", "--slots", "2", "-C", root], root, env);
  await waitFor(() => /#3 .*(keep|discard)/.test(killed.out), 60_000, "three trials");
  killed.kill("SIGKILL");
  await once(killed, "close");
  // A replicate in flight finishes on its own (its test sleep is 1 s), writing its log.
  await new Promise((r) => setTimeout(r, 2500));
  // Killed five hours ago: everything it recorded moves that much earlier, its logs too,
  // whose last write recovery takes for when a replicate it did not watch ended.
  const trialsDir = join(root, ".autoresearch", "runs", "r", "trials");
  for (const n of readdirSync(trialsDir))
    for (const name of readdirSync(join(trialsDir, n))) {
      const file = join(trialsDir, n, name);
      const { atimeMs, mtimeMs } = statSync(file);
      utimesSync(file, (atimeMs - HOURS_5) / 1000, (mtimeMs - HOURS_5) / 1000);
    }
  const db = new Database(join(root, ".autoresearch", "ledger.db"));
  db.transaction(() => {
    db.prepare("UPDATE events SET at = at - ?").run(HOURS_5);
    db.prepare("UPDATE runs SET created_at = created_at - ?").run(HOURS_5);
    for (const column of ["started_at", "running_at", "finished_at"])
      db.prepare(`UPDATE replicates SET ${column} = ${column} - ?`).run(HOURS_5);
  })();
  db.close();
  const resumed = await runCli(["resume", "--tag", "r", "-n", "8", "-C", root], { env });
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(resumed.stdout).toMatch(/recovered|interrupted|killed/);
  const { status, report } = await busyShares(root);
  for (const share of [...status!.matchAll(/cpu\d (\d+)%/g)].map((m) => m[1]))
    expect(Number(share)).toBeGreaterThan(10);
  for (const share of report) expect(Number.parseFloat(share!)).toBeGreaterThan(10);
}, 120_000);
