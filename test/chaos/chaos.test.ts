import { execFileSync, spawn } from "node:child_process";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { CLI, FIXTURES, makeRepo, ROOT, runCli, sh, survivors, tempDir } from "../helpers.js";

const CYCLES = Number(process.env.CHAOS_CYCLES ?? 20);

function runExists(root: string): boolean {
  if (!existsSync(join(root, ".autoresearch/ledger.db"))) return false;
  const ledger = Ledger.open(root);
  const found = ledger.run("chaos") !== null;
  ledger.close();
  return found;
}

function chaosTask(journal: string, marker: string, extra = "") {
  return makeRepo({
    "autoresearch.yaml": [
      "editable: [train.mjs]",
      "run: node train.mjs",
      "budget: 2s",
      "timeout: 30s",
      "kill_grace: 2s",
      "metric: { name: score, goal: minimize }",
      `env: { CHAOS_JOURNAL: "${journal}", CHAOS_MARK: "${marker}" }`,
      // The journal is outside the task: the sandbox lets replicates write it.
      `sandbox: { binds: [{ path: "${dirname(journal)}", writable: true }] }`,
      extra,
    ].join("\n"),
    "train.mjs": readFileSync(join(FIXTURES, "chaos-train.mjs"), "utf8"),
  });
}

/**
 * The run's trials and its resumes' recoveries so far: a number that grows once an
 * orchestrator is under way. (Growth of the journal would not tell: SLURM jobs of a killed
 * orchestrator go on writing it.)
 */
function progress(root: string): number {
  const path = join(root, ".autoresearch/ledger.db");
  if (!existsSync(path)) return 0;
  const db = new Database(path, { readonly: true });
  try {
    db.pragma("busy_timeout = 10000");
    const sql = `SELECT (SELECT count(*) FROM trials)
      + (SELECT count(*) FROM events WHERE kind = 'recovered') AS n`;
    return (db.prepare(sql).get() as { n: number }).n;
  } catch {
    return 0; // not created yet
  } finally {
    db.close();
  }
}

/** Resolves once the run has progressed past `from`, or at the time limit. */
async function progressed(root: string, from: number, limitMs: number) {
  const until = Date.now() + limitMs;
  while (progress(root) <= from && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

/**
 * Starts the run, then kills its orchestrator with SIGKILL at a random moment, again and
 * again, resuming each time; finally lets it finish and checks every invariant.
 */
async function chaos(root: string, journal: string, marker: string, first: string[]) {
  // The kills fall at random moments of the work, after the CLI has started: on a slow
  // machine its start alone (over a second here) would take most of the window.
  const before = Date.now();
  execFileSync(process.execPath, [CLI, "--version"]);
  const start = Date.now() - before;
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    // A kill early enough leaves no run to resume: it is started again.
    const args = runExists(root)
      ? ["resume", "-C", root]
      : ["run", "-C", root, "--tag", "chaos", "--max-trials", "1000", ...first];
    const from = progress(root);
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const closed = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    // Every other kill waits for the orchestrator to get under way (a trial begun or a
    // recovery recorded), so that, however slow the machine or the cluster, some kills
    // surely land mid-work and some resumes surely find it.
    if (cycle % 2 === 1) await progressed(root, from, 60_000);
    await new Promise((r) => setTimeout(r, start + 400 + Math.random() * 2600));
    child.kill("SIGKILL");
    // An orchestrator that ended by itself before the kill must have had a reason to.
    const code = await closed;
    expect({ cycle, code, stderr }).toEqual({ cycle, code: null, stderr: "" });
  }
  const ledger = Ledger.open(root);
  const count = ledger.countTrials(ledger.run("chaos")!.id);
  ledger.close();
  const final = await runCli(["resume", "-C", root, "--max-trials", String(count + 4)], {
    timeoutMs: 180_000,
  });
  expect(final.stderr).toBe("");
  expect(final.code).toBe(0);

  const doctor = await runCli(["doctor", "-C", root]);
  expect(doctor.stdout).toMatch(/^sandbox: bubblewrap [^\n]+\nrun chaos: ok\n$/);
  expect(doctor.code).toBe(0);

  // Every replicate that surely produced a result is recorded exactly once, as ok, with
  // its score; a replicate recorded as ok printed a score it had journaled as intended.
  // (One killed between printing and journaling it as done may be recorded or not.)
  const after = Ledger.open(root);
  const run = after.run("chaos")!;
  const recorded = new Map<string, number>();
  for (const t of after.trials(run.id))
    for (const r of after.replicates(t.id))
      if (r.outcome === "ok") recorded.set(`${t.n} ${r.idx}`, r.metric!);
  expect(after.trials(run.id).every((t) => t.state === "done")).toBe(true);
  after.close();
  const lines = readFileSync(journal, "utf8").trim().split("\n");
  const produced = lines.filter((l) => !l.startsWith("? ")).map((l) => l.split(" "));
  const intended = new Map<string, number[]>();
  for (const [, n, i, score] of lines.filter((l) => l.startsWith("? ")).map((l) => l.split(" ")))
    intended.set(`${n} ${i}`, [...(intended.get(`${n} ${i}`) ?? []), Number(score)]);
  expect(new Set(produced.map(([n, i]) => `${n} ${i}`)).size).toBe(produced.length);
  for (const [n, i, score] of produced)
    expect(recorded.get(`${n} ${i}`)).toBeCloseTo(Number(score), 10);
  for (const [key, metric] of recorded)
    expect({ key, near: intended.get(key)?.some((s) => Math.abs(s - metric) < 1e-9) }).toEqual({
      key,
      near: true,
    });
  expect(survivors(marker)).toEqual([]);
  expect(sh(root, "git worktree list").split("\n")).toHaveLength(1);
  // The kills did land mid-work: resumes found trials to close or go on with, replicates
  // to end or read back. (On a loaded machine more kills land while the CLI starts.)
  const check = Ledger.open(root);
  const recoveries = check
    .events(check.run("chaos")!.id)
    .filter((e) => e.kind === "recovered")
    .map((e) => e.data as Record<"interrupted" | "killed" | "recovered" | "continued", number>);
  check.close();
  const midWork = recoveries.filter(
    (r) => r.interrupted + r.killed + r.recovered + r.continued > 0,
  ).length;
  // For the fault table in bench/README.md: CHAOS_REPORT=<file> collects each run's counts.
  if (process.env.CHAOS_REPORT)
    appendFileSync(
      process.env.CHAOS_REPORT,
      `${JSON.stringify({ root, kills: CYCLES, produced: produced.length, recorded: recorded.size, midWork, recoveries })}\n`,
    );
  return { produced: produced.length, midWork };
}

describe("chaos: SIGKILL at random moments, then resume", () => {
  it(`a 4-slot local run survives ${CYCLES} kills with every result recorded once and nothing left behind`, async () => {
    const dir = tempDir();
    const marker = `chaos-local-${process.pid}-${Date.now()}`;
    const journal = join(dir, "journal");
    const root = chaosTask(journal, marker);
    const { produced, midWork } = await chaos(root, journal, marker, ["--slots", "4"]);
    expect(produced).toBeGreaterThan(CYCLES / 2);
    expect(midWork).toBeGreaterThanOrEqual(CYCLES / 4);
  }, 600_000);

  describe("on SLURM", () => {
    beforeAll(() => {
      execFileSync(join(ROOT, "scripts/slurm-local.sh"), { stdio: "pipe", timeout: 240_000 });
    }, 300_000);

    it(`a SLURM run survives ${CYCLES} kills, its jobs followed again, none left queued`, async () => {
      const dir = tempDir();
      const marker = `chaos-slurm-${process.pid}-${Date.now()}`;
      const journal = join(dir, "journal");
      const root = chaosTask(journal, marker, "slurm: { poll: 500ms }");
      const { produced, midWork } = await chaos(root, journal, marker, [
        "--executor",
        "slurm",
        "--slots",
        "4",
      ]);
      expect(produced).toBeGreaterThan(CYCLES / 2);
      expect(midWork).toBeGreaterThanOrEqual(CYCLES / 4);
      const queued = execFileSync("squeue", ["-h", "-o", "%j"], { encoding: "utf8" });
      expect(queued.split("\n").filter((j) => j.startsWith("ar-chaos-"))).toEqual([]);
      expect(existsSync(journal)).toBe(true);
    }, 900_000);
  });
});
