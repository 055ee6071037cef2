/**
 * The dashboard and the report on a long run. A synthetic ledger of N trials (default
 * 10,000: a random walk judged greedily, 2 slots, some crashes, diffs for the keeps) is
 * written through the Ledger's API; then:
 *  - first load over HTTP against the real server: the run page's HTML plus the trial
 *    table's data (what the page's script fetches), cold and warm;
 *  - first load in headless Chromium: from navigation to the table's first screen on
 *    screen, and to the whole table (all trials) loaded;
 *  - `report`: report.html, progress.svg and progress.png written.
 *
 *   npm run bench -- dashboard [trials]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { Ledger } from "../src/ledger/ledger.js";
import { startDashboard } from "../src/report/dashboard/server.js";
import { writeReport } from "../src/report/write.js";
import { addTrial, createFixtureRun, type FixtureTrial } from "../test/report/fixture.js";

const TRIALS = Number(process.argv[2] ?? 10_000);
const CHROMIUM = "/usr/bin/chromium";

/** A seeded generator, so that every run of the benchmark measures the same ledger. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeLedger(root: string, trials: number): void {
  const rand = random(7);
  const ledger = Ledger.open(root);
  const run = createFixtureRun(ledger, { tag: "bench", gpus: 1 });
  let best = 1.0;
  ledger.db.transaction(() => {
    for (let n = 0; n < trials; n++) {
      const crash = n > 0 && rand() < 0.03;
      // Improvements get rarer as the run goes on, as in a long real run (about 230 keeps).
      const odds = 0.15 / (1 + n / 500);
      const metric = n === 0 ? best : best * (1 + (rand() - odds) * 0.01);
      const keep = !crash && (n === 0 || metric < best);
      if (keep) best = metric;
      const name = `PARAM_${Math.floor(rand() * 40)}`;
      const t: FixtureTrial = {
        title: n === 0 ? "baseline" : `${name} ${rand().toFixed(3)} → ${rand().toFixed(3)}`,
        verdict: crash ? "crash" : keep ? "keep" : "discard",
        metric: crash ? null : metric,
        slot: `gpu${n % 2}`,
        hypothesis: "a synthetic change",
        diff: keep
          ? `--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-${name} = 1\n+${name} = 2\n`
          : undefined,
        durationMs: 28_000,
      };
      addTrial(ledger, root, run, t);
    }
  })();
  // Spread the trials over time as two slots would run them, 30 s apart.
  const start = Date.now() - (trials / 2) * 30_000;
  ledger.db
    .prepare(
      "UPDATE trials SET created_at = ? + (n / 2) * 30000, finished_at = ? + (n / 2) * 30000 + 29000",
    )
    .run(start, start);
  ledger.db
    .prepare(
      `UPDATE replicates SET started_at = (SELECT created_at FROM trials t WHERE t.id = trial_id) + 500,
         finished_at = (SELECT created_at FROM trials t WHERE t.id = trial_id) + 28500`,
    )
    .run();
  ledger.setRunStatus(run.id, "finished", "benchmark");
  ledger.close();
}

function get(port: number, path: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path }, (res) => {
      let bytes = 0;
      res.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
    })
      .on("error", reject)
      .end();
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x);

async function firstLoad(port: number): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const page = await get(port, "/runs/bench");
  const data = await get(port, "/api/runs/bench/trials");
  if (page.status !== 200 || data.status !== 200) throw new Error("the dashboard did not answer");
  return { ms: performance.now() - t0, bytes: page.bytes + data.bytes };
}

const root = mkdtempSync(join(tmpdir(), "ar-bench-dashboard-"));
try {
  let t0 = performance.now();
  makeLedger(root, TRIALS);
  const ledgerMs = performance.now() - t0;

  const dashboard = await startDashboard({ root, port: 0 });
  const cold = await firstLoad(dashboard.port);
  const warm: number[] = [];
  for (let i = 0; i < 10; i++) warm.push((await firstLoad(dashboard.port)).ms);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
  });
  const rendered: number[] = [];
  const complete: number[] = [];
  const charted: number[] = [];
  for (let i = 0; i < 3; i++) {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${dashboard.port}/runs/bench`);
    await page.locator("body[data-ready]").waitFor();
    // Milliseconds from the start of navigation to the table in the DOM, as the page
    // marked it (the server runs in this process: a late reading here would add its work).
    const mark = async (name: string) =>
      Number(await page.evaluate(`performance.getEntriesByName('${name}')[0].startTime`));
    rendered.push(await mark("table-ready"));
    // The whole table (all trials, for sorting and filtering) follows the first screen.
    complete.push(await mark("table-complete"));
    // The charts come after the table; wait for them so that the next load starts idle.
    // (A polling evaluate: waitForFunction would need eval, which the page's CSP forbids.)
    while (
      !(await page.evaluate(
        "['progress', 'timeline'].every((id) => document.getElementById(id).naturalWidth > 0)",
      ))
    )
      await new Promise((r) => setTimeout(r, 50));
    charted.push(
      Number(
        await page.evaluate(
          "Math.max(...performance.getEntriesByType('resource').filter((e) => e.name.includes('.svg')).map((e) => e.responseEnd))",
        ),
      ),
    );
    await page.close();
  }
  await browser.close();
  await dashboard.close();

  const reports: number[] = [];
  for (let i = 0; i < 3; i++) {
    t0 = performance.now();
    await writeReport({ root, tag: "bench" });
    reports.push(performance.now() - t0);
  }

  const result = {
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
    // The machine may be shared: the 1-minute load average when the measurements ended.
    load_average: Number(loadavg()[0]!.toFixed(1)),
    trials: TRIALS,
    ledger_build_ms: round(ledgerMs),
    first_load_http_ms: {
      cold: round(cold.ms),
      warm_median: round(median(warm)),
      bytes: cold.bytes,
    },
    first_load_chromium_ms: { first: round(rendered[0]!), median: round(median(rendered)) },
    whole_table_chromium_ms: { first: round(complete[0]!), median: round(median(complete)) },
    charts_loaded_chromium_ms: { first: round(charted[0]!), median: round(median(charted)) },
    report_ms: { first: round(reports[0]!), median: round(median(reports)) },
    targets: { first_load_ms: 1000, report_ms: 5000 },
  };
  console.log(JSON.stringify(result, null, 2));
  const out = join(import.meta.dirname, "results", `dashboard-${result.date.slice(0, 10)}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`written to ${out}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
